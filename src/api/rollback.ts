import { StateError } from '../errors.ts';
import { hashOf } from '../manifest/hash.ts';
import type { Manifest } from '../manifest/types.ts';
import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import type { ApplyResult } from '../apply/apply.ts';
import type { GenerationRecord } from '../state/records.ts';
import { applyDeployment, type ApplyDeploymentOptions } from './apply.ts';
import { stateStore, type Context } from './context.ts';

export interface PlannedRollback {
  plan: Plan;
  /** The generation rolled back to. */
  target: number;
  /** The commit the target generation's models were read from, if they came from Git. */
  commit?: GenerationRecord['commit'];
}

export interface RollbackResult extends ApplyResult {
  rolledBackTo: number;
  /** The commit the target generation was made from, recorded again with the new generation. */
  commit?: GenerationRecord['commit'];
}

/**
 * How a rollback is applied, apart from what makes it a rollback (which the caller cannot change).
 * Never rebased after a recovery: a rollback whose recorded state moved on under it (an interrupted
 * transition was completed first) is refused as stale, from the CLI and the controller alike,
 * since which generation is "the one before" changed with it.
 */
export type RollbackOptions = Omit<ApplyDeploymentOptions, 'rolledBackTo' | 'commit' | 'source' | 'rebaseAfterRecovery'> & {
  /** Applies the plan (default: applyDeployment); unit tests pass a fake. */
  apply?: typeof applyDeployment;
};

/**
 * Plans the return to an earlier generation (default: the one before the current). The result
 * is a new generation whose manifest equals the old one, so history stays a straight line.
 */
export function planRollback(deployment: string, ctx: Context, to?: number): PlannedRollback {
  const store = stateStore(ctx);
  const current = store.current(deployment);
  if (!current) throw new StateError('NOTHING_DEPLOYED', `deployment ${deployment} has no recorded generation to roll back from`, { deployment });
  const target = to ?? store.generations(deployment).filter((g) => g < current.generation).pop();
  if (target === undefined) throw new StateError('NO_PREVIOUS_GENERATION', `deployment ${deployment} has no generation before ${current.generation}`, { deployment });
  if (target === current.generation) throw new StateError('ALREADY_CURRENT', `generation ${target} is already the current one`, { deployment });
  const old = store.generation(deployment, target);
  const plan = planTransition(current, withoutAbandoned(old.manifest, abandonedSince(deployment, target, current.manifest, ctx)), 'rollback');
  return { plan, target, ...(old.commit ? { commit: old.commit } : {}) };
}

/**
 * Applies a planned rollback, the one way the CLI and the controller both do it: the new
 * generation records the generation it returns to (`rolledBackTo`) and that generation's commit,
 * since the models now running are the ones read from it (docs/cli.md, `strata rollback`).
 */
export async function applyRollback(planned: PlannedRollback, ctx: Context, opts: RollbackOptions = {}): Promise<RollbackResult> {
  const { apply = applyDeployment, ...rest } = opts;
  const { plan, target, commit } = planned;
  const result = await apply(plan, ctx, { ...rest, rolledBackTo: target, source: `rollback to generation ${target}`, ...(commit ? { commit } : {}) });
  return { ...result, rolledBackTo: target, ...(commit ? { commit } : {}) };
}

/**
 * Machines abandoned after generation `target` (`strata abandon-machine`) that the current
 * generation does not have again: a rollback never brings them back, since they are gone.
 */
function abandonedSince(deployment: string, target: number, current: Manifest, ctx: Context): Set<string> {
  const store = stateStore(ctx);
  const out = new Set<string>();
  for (const n of store.generations(deployment)) {
    if (n <= target) continue;
    const machine = store.generation(deployment, n).abandoned?.machine;
    if (machine && !current.machines[machine]) out.add(machine);
  }
  return out;
}

function withoutAbandoned(m: Manifest, gone: ReadonlySet<string>): Manifest {
  if (![...gone].some((name) => m.machines[name])) return m;
  const machines = Object.fromEntries(Object.entries(m.machines).filter(([name]) => !gone.has(name)));
  return { ...m, machines, hash: hashOf({ machines }) };
}
