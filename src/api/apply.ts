import { applyPlan, type ApplyResult } from '../apply/apply.ts';
import { recoverTransition } from '../apply/recover.ts';
import type { RecoveryResult } from '../apply/recoveryResult.ts';
import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import type { GenerationRecord } from '../state/records.ts';
import { fsTree } from '../tree/fsTree.ts';
import type { Tree } from '../tree/tree.ts';
import { connectOptions, stateStore, type Context } from './context.ts';
import { hinted } from './plan.ts';

export interface ApplyDeploymentOptions {
  source?: string;
  commit?: GenerationRecord['commit'];
  rolledBackTo?: number;
  /** Where artifacts are read from (default: the disk). */
  tree?: Tree;
  /**
   * When recovery completes an interrupted transition first (so the recorded state moves on),
   * plan again from the new recorded state to the same desired manifest instead of refusing the
   * plan as stale. For plans made from the models just now (the CLI's `apply ROOT`, the
   * controller); never for a saved plan, which is pinned to the state it was made from.
   */
  rebaseAfterRecovery?: boolean;
}

/**
 * Applies a plan with the context's state store and targets. Holds the deployment's transition
 * lock on the state directory throughout, and first recovers a transition that a crash
 * interrupted (src/apply/recover.ts).
 */
export async function applyDeployment(plan: Plan, ctx: Context, opts: ApplyDeploymentOptions = {}): Promise<ApplyResult> {
  const { tree = fsTree, rebaseAfterRecovery, ...rest } = opts;
  const state = stateStore(ctx);
  const release = state.lockDeployment(plan.deployment);
  try {
    const recovery = await recoverLocked(plan.deployment, ctx);
    if (recovery.action === 'completed' && rebaseAfterRecovery && plan.kind !== 'repair' && plan.kind !== 'preview') {
      plan = { ...planTransition(state.current(plan.deployment), plan.desired, plan.kind), ...(plan.revisions ? { revisions: plan.revisions } : {}), ...(plan.claimSources ? { claimSources: plan.claimSources } : {}) };
    }
    const result = await applyPlan(plan, {
      state,
      tree,
      runtimeFor: (m) => ctx.services.openRuntime(m, plan.deployment, connectOptions(ctx)),
      live: ctx.services.live,
      onEvent: ctx.onEvent,
      machineConcurrency: ctx.parallel,
      lockLeaseMs: ctx.lockLeaseMs,
      ...rest,
    });
    return recovery.action === 'none' ? result : { ...result, recovery };
  } catch (e) {
    throw hinted(e, plan.deployment, ctx);
  } finally {
    release();
  }
}

/**
 * Recovers an interrupted transition of the deployment, if its journal holds one: completes it
 * when every machine recorded the new generation, else rolls it back. Takes the deployment's
 * transition lock; STATE_LOCKED when a live process holds it.
 */
export async function recoverDeployment(deployment: string, ctx: Context): Promise<RecoveryResult> {
  const state = stateStore(ctx);
  if (!state.hasJournal(deployment)) return { action: 'none', deployment, undone: 0, started: 0, machines: [], message: 'no interrupted transition' };
  const release = state.lockDeployment(deployment);
  try {
    return await recoverLocked(deployment, ctx);
  } finally {
    release();
  }
}

/** Recovery with the context's services; the caller holds the deployment's transition lock. */
export function recoverLocked(deployment: string, ctx: Context): Promise<RecoveryResult> {
  return recoverTransition(deployment, {
    state: stateStore(ctx),
    runtimeFor: (m) => ctx.services.openRuntime(m, deployment, connectOptions(ctx)),
    live: ctx.services.live,
    machineConcurrency: ctx.parallel,
    onEvent: ctx.onEvent,
  });
}
