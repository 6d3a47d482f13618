import { StateError } from '../errors.ts';
import { hashOf } from '../manifest/hash.ts';
import type { Manifest } from '../manifest/types.ts';
import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';

/**
 * Plans the return to an earlier generation (default: the one before the current). The result
 * is a new generation whose manifest equals the old one, so history stays a straight line.
 */
export function planRollback(deployment: string, ctx: Context, to?: number): { plan: Plan; target: number } {
  const store = stateStore(ctx);
  const current = store.current(deployment);
  if (!current) throw new StateError('NOTHING_DEPLOYED', `deployment ${deployment} has no recorded generation to roll back from`, { deployment });
  const target = to ?? store.generations(deployment).filter((g) => g < current.generation).pop();
  if (target === undefined) throw new StateError('NO_PREVIOUS_GENERATION', `deployment ${deployment} has no generation before ${current.generation}`, { deployment });
  if (target === current.generation) throw new StateError('ALREADY_CURRENT', `generation ${target} is already the current one`, { deployment });
  const old = store.generation(deployment, target);
  return { plan: planTransition(current, withoutAbandoned(old.manifest, abandonedSince(deployment, target, current.manifest, ctx)), 'rollback'), target };
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
