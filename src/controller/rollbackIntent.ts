import type { Logger } from 'pino';
import type { Context } from '../api/context.ts';
import { applyRollback, planRollback } from '../api/rollback.ts';
import { StrataError } from '../errors.ts';
import { deploymentContext } from './deploymentContext.ts';
import { markRolledBack } from './conditions.ts';
import { retrySucceeded, type DeploymentRecord, type Intent } from './deploymentRecord.ts';
import type { Outcome, ReconcileDeps } from './reconcileOutcome.ts';
import { recordApplied, recordTransition, trackedContext } from './transition.ts';

/**
 * A rollback asked through the API: back to an earlier generation at once (src/api/rollback.ts,
 * as `strata rollback` does), then suspended, so the controller does not re-apply the branch
 * head it just rolled back from. `retryAfterMs`: when to look again after a failure.
 */
export async function runRollback(d: DeploymentRecord, intent: Extract<Intent, { kind: 'rollback' }>, deps: ReconcileDeps, log: Logger, retryAfterMs: number): Promise<Outcome> {
  const ctx: Context = deploymentContext(d.config, deps.stateDir, deps.services);
  try {
    const planned = planRollback(d.config.name, ctx, intent.to);
    // The models now running came from the commit of the generation rolled back to.
    const revision = planned.commit?.sha ?? `generation-${planned.target}`;
    const result = await applyRollback(planned, trackedContext(d, planned.plan, revision, ctx, log));
    recordApplied(d, deps.metrics, revision, result.generation);
    recordTransition(deps.metrics, d.config.name, planned.plan);
    d.status.suspended = true;
    retrySucceeded(d, 'reconcile');
    d.status.plan = undefined;
    const message = `rolled back to generation ${result.rolledBackTo} (recorded as generation ${result.generation}); suspended so the repository is not re-applied: resume to follow it again`;
    markRolledBack(d.status, message);
    log.warn({ generation: result.generation, to: result.rolledBackTo }, message);
    intent.settle({ ok: true, generation: result.generation, message });
    return { result: 'rolled-back' };
  } catch (e) {
    d.status.plan = undefined;
    const message = `rollback failed: ${e instanceof Error ? e.message : String(e)}`;
    log.error(message);
    intent.settle({ ok: false, message, ...(e instanceof StrataError ? { code: e.code } : {}) });
    return { result: 'failed', requeueAfterMs: retryAfterMs };
  }
}

