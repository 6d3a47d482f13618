import type { Logger } from 'pino';
import type { Context } from '../api/context.ts';
import { describeBroken } from '../apply/events.ts';
import type { Plan } from '../plan/types.ts';
import { markProgressing } from './conditions.ts';
import type { DeploymentRecord } from './deploymentRecord.ts';
import type { ControllerMetrics } from './metrics.ts';
import { markStep, stepsOf } from './status.ts';

/**
 * The context a controller's transition runs with: apply's events keep the status's step list
 * current (what runs, what waits on what) and become log lines.
 */
export function trackedContext(d: DeploymentRecord, plan: Plan, revision: string, ctx: Context, log: Logger): Context {
  const steps = stepsOf(plan.steps);
  d.status.plan = { generation: plan.generation, revision, steps };
  markProgressing(d.status, `applying commit ${revision.slice(0, 12)} as generation ${plan.generation} (${plan.steps.length} steps)`);
  return {
    ...ctx,
    onEvent: (e) => {
      if (e.kind === 'step') markStep(steps, e.step.id, e.status === 'start' ? 'running' : e.status);
      if (e.kind === 'step' && e.status === 'failed') log.warn({ step: e.step.id, machine: e.step.machine }, `step ${e.step.id} failed: ${e.step.action} ${e.step.item.name} on ${e.step.machine}`);
      if (e.kind === 'undo') log.warn(`rolling back: undoing ${e.steps} steps`);
      if (e.kind === 'lock-broken') log.warn({ machine: e.machine, holder: e.holder }, describeBroken(e.machine, { ...e.holder, why: e.why }));
      if (e.kind === 'lock-lost') log.error({ machine: e.machine }, `lost the lock of ${e.machine}: ${e.error}`);
      if (e.kind === 'recovery') log.warn({ recovery: e.result.action, generation: e.result.generation }, `recovery: ${e.result.message}`);
    },
  };
}

/** What runs now, in the status and the metrics alike. */
export function recordApplied(d: DeploymentRecord, metrics: ControllerMetrics, revision: string, generation: number): void {
  d.status.lastAppliedRevision = revision;
  d.status.generation = generation;
  metrics.setLastApplied(d.config.name, revision, generation);
}

/** A transition that committed: the metrics of the deployment's transitions and machines. */
export function recordTransition(metrics: ControllerMetrics, name: string, plan: Plan): void {
  metrics.transitions.inc({ deployment: name, result: 'succeeded' });
  metrics.lastAppliedTime.set({ deployment: name }, Date.now() / 1000);
  metrics.machinesReachable.set({ deployment: name }, plan.machines.length);
  metrics.machines.set({ deployment: name }, Object.keys(plan.desired.machines).length);
}
