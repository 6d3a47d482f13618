import type { Logger } from 'pino';
import { applyDeployment } from '../api/apply.ts';
import type { Context } from '../api/context.ts';
import { planRepair } from '../api/repair.ts';
import { deploymentStatus, driftOf } from '../api/status.ts';
import type { Tree } from '../source/tree.ts';
import type { ControllerMetrics } from './metrics.ts';
import type { DeploymentRuntime } from './deployment.ts';

export const DEFAULT_PROBE_INTERVAL_MS = 60_000;

/**
 * Asks every machine (one round trip each) whether it still runs what the recorded generation
 * says. Drift becomes an event in the status, the metrics and the log; with selfHeal on, only
 * the drifted items are put back (src/api/repair.ts), with it off they are only reported.
 */
export async function checkDrift(d: DeploymentRuntime, ctx: Context, metrics: ControllerMetrics, log: Logger, tree: Tree): Promise<NonNullable<DeploymentRuntime['status']['drift']>['action']> {
  const name = d.config.name;
  const report = await deploymentStatus(name, ctx);
  const drifts = driftOf(report);
  const unreachable = report.machines.filter((m) => !m.reachable);
  metrics.machinesReachable.set({ deployment: name }, report.machines.length - unreachable.length);
  metrics.driftItems.set({ deployment: name }, drifts.length);
  for (const m of unreachable) log.warn({ machine: m.machine }, `probe: ${m.machine} is unreachable: ${m.error}`);
  const record = (action: NonNullable<DeploymentRuntime['status']['drift']>['action']) => {
    d.status.drift = {
      checkedAt: new Date().toISOString(),
      items: drifts.map((x) => ({ machine: x.machine, name: x.name, reason: x.reason })),
      unreachable: unreachable.map((m) => m.machine),
      action,
    };
    return action;
  };
  if (drifts.length === 0) return record('none');

  for (const x of drifts) log.warn({ machine: x.machine, item: x.name }, `drift on ${x.machine}: ${x.name}: ${x.reason}; ${d.config.selfHeal ? 'restoring it' : 'reporting only (selfHeal is off)'}`);
  if (!d.config.selfHeal) {
    metrics.driftEvents.inc({ deployment: name, action: 'reported' }, drifts.length);
    return record('reported');
  }
  try {
    const plan = planRepair(name, drifts, ctx);
    const result = await applyDeployment(plan, ctx, { tree, source: 'drift repair' });
    metrics.driftEvents.inc({ deployment: name, action: 'healed' }, drifts.length);
    log.info({ steps: result.steps, ms: result.durationMs }, `restored ${drifts.length} drifted item${drifts.length === 1 ? '' : 's'} in ${result.durationMs}ms`);
    return record('healed');
  } catch (e) {
    metrics.driftEvents.inc({ deployment: name, action: 'heal_failed' }, drifts.length);
    log.error(`could not restore the drifted items: ${(e as Error).message}`);
    return record('heal-failed');
  }
}
