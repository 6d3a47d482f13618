import type { Logger } from 'pino';
import type { Context } from '../api/context.ts';
import { healDrift, probeDrift, type DriftProbe } from '../api/drift.ts';
import type { Tree } from '../tree/tree.ts';
import { markDrift } from './conditions.ts';
import type { DeploymentRecord } from './deploymentRecord.ts';
import type { ControllerMetrics } from './metrics.ts';
import type { DeploymentStatus } from './status.ts';

export const DEFAULT_PROBE_INTERVAL_MS = 60_000;

type DriftAction = NonNullable<DeploymentStatus['drift']>['action'];

/**
 * Probes every machine (one round trip each, read-only: src/api/drift.ts) for whether it still
 * runs what the recorded generation says. Drift becomes an event in the status, the metrics and
 * the log; with selfHeal on, only the drifted items are then healed, with it off only reported.
 */
export async function checkDrift(d: DeploymentRecord, ctx: Context, metrics: ControllerMetrics, log: Logger, tree: Tree): Promise<DriftAction> {
  const name = d.config.name;
  const probe = await probeDrift(name, ctx);
  const { drifts, unreachable } = probe;
  metrics.machinesReachable.set({ deployment: name }, probe.machines - unreachable.length);
  metrics.driftItems.set({ deployment: name }, drifts.length);
  for (const m of unreachable) log.warn({ machine: m.machine }, `probe: ${m.machine} is unreachable: ${m.error}`);
  if (drifts.length === 0) return recordDrift(d, probe, 'none');

  for (const x of drifts) log.warn({ machine: x.machine, item: x.name }, `drift on ${x.machine}: ${x.name}: ${x.reason}; ${d.config.selfHeal ? 'restoring it' : 'reporting only (selfHeal is off)'}`);
  if (!d.config.selfHeal) {
    metrics.driftEvents.inc({ deployment: name, action: 'reported' }, drifts.length);
    return recordDrift(d, probe, 'reported');
  }
  try {
    const result = (await healDrift(probe, ctx, { tree }))!;
    metrics.driftEvents.inc({ deployment: name, action: 'healed' }, drifts.length);
    log.info({ steps: result.steps, ms: result.durationMs }, `restored ${drifts.length} drifted item${drifts.length === 1 ? '' : 's'} in ${result.durationMs}ms`);
    return recordDrift(d, probe, 'healed');
  } catch (e) {
    metrics.driftEvents.inc({ deployment: name, action: 'heal_failed' }, drifts.length);
    log.error(`could not restore the drifted items: ${(e as Error).message}`);
    return recordDrift(d, probe, 'heal-failed');
  }
}

/** The probe in the status, and in the conditions when something is left drifted. */
function recordDrift(d: DeploymentRecord, probe: DriftProbe, action: DriftAction): DriftAction {
  d.status.drift = {
    checkedAt: new Date().toISOString(),
    items: probe.drifts.map((x) => ({ machine: x.machine, name: x.name, reason: x.reason })),
    unreachable: probe.unreachable.map((m) => m.machine),
    action,
  };
  if ((action === 'reported' || action === 'heal-failed') && probe.generation !== null) markDrift(d.status, action, probe.generation, probe.drifts.length);
  return action;
}
