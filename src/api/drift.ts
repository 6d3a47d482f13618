import type { ApplyResult } from '../apply/apply.ts';
import { StateError } from '../errors.ts';
import { planRepair } from '../plan/repair.ts';
import type { Plan } from '../plan/types.ts';
import { applyDeployment, type ApplyDeploymentOptions } from './apply.ts';
import { stateStore, type Context } from './context.ts';
import { deploymentStatus, driftOf, type Drift, type MachineReport } from './status.ts';

/** What a probe found: read-only, nothing on a machine changed. */
export interface DriftProbe {
  deployment: string;
  /** The recorded generation probed; null when nothing is deployed. */
  generation: number | null;
  drifts: Drift[];
  /** Machines probed, and the ones that did not answer. */
  machines: number;
  unreachable: Pick<MachineReport, 'machine' | 'error'>[];
}

export interface HealOptions extends Omit<ApplyDeploymentOptions, 'source' | 'commit' | 'rolledBackTo'> {
  /** Called with the repair plan before it is applied (the CLI shows it). */
  onPlan?: (plan: Plan) => void;
  /** Applies the plan (default: applyDeployment); unit tests pass a fake. */
  apply?: typeof applyDeployment;
}

/**
 * Probing: asks every machine of the recorded generation (one round trip each) whether it still
 * runs what that generation says. Changes nothing (docs/cli.md, `strata status`).
 */
export async function probeDrift(deployment: string, ctx: Context): Promise<DriftProbe> {
  const report = await deploymentStatus(deployment, ctx);
  const unreachable = report.machines.filter((m) => !m.reachable).map((m) => ({ machine: m.machine, ...(m.error ? { error: m.error } : {}) }));
  return { deployment, generation: report.generation, drifts: driftOf(report), machines: report.machines.length, unreachable };
}

/**
 * Healing: puts back only the drifted items a probe found, as the recorded generation has them
 * (the repair plan of src/plan/repair.ts), and records no new generation. Nothing drifted:
 * nothing is applied.
 */
export async function healDrift(probe: DriftProbe, ctx: Context, opts: HealOptions = {}): Promise<ApplyResult | undefined> {
  if (probe.drifts.length === 0) return undefined;
  const { onPlan, apply = applyDeployment, ...rest } = opts;
  const current = stateStore(ctx).current(probe.deployment);
  if (!current) throw new StateError('NOTHING_DEPLOYED', `deployment ${probe.deployment} has nothing deployed to repair`, { deployment: probe.deployment });
  const plan = planRepair(current, probe.drifts);
  onPlan?.(plan);
  return apply(plan, ctx, { ...rest, source: 'drift repair' });
}

/** `strata repair` and the controller's self-heal: probe, then heal what drifted. */
export async function repairDeployment(deployment: string, ctx: Context, opts: HealOptions = {}): Promise<{ probe: DriftProbe; result?: ApplyResult }> {
  const probe = await probeDrift(deployment, ctx);
  const result = await healDrift(probe, ctx, opts);
  return { probe, ...(result ? { result } : {}) };
}
