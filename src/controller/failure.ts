import type { Logger } from 'pino';
import { StrataError } from '../errors.ts';
import { classOf } from '../errors/codes.ts';
import { formatDuration } from '../lib/backoff.ts';
import { markFailed } from './conditions.ts';
import { retryAfter, type DeploymentRecord } from './deploymentRecord.ts';
import type { ControllerMetrics } from './metrics.ts';
import type { Outcome } from './reconcileOutcome.ts';

/** The API route that abandons a machine, for messages about machines recovery cannot reach. */
export function withAbandonRoute(deployment: string, e: unknown, message: string): string {
  const machines = e instanceof StrataError && e.code === 'RECOVERY_FAILED' && Array.isArray(e.data.machines) ? (e.data.machines as string[]) : [];
  if (machines.length === 0) return message;
  return `${message} (through the API: POST /api/deployments/${deployment}/machines/${machines[0]}/abandon with {"reason": TEXT})`;
}

/**
 * A reconcile that failed: recorded in the status (its reason and whether it is terminal come
 * from the error table, src/errors/codes.ts). A terminal failure waits for a newer commit; any
 * other is retried with the reconcile's backoff (src/controller/retry.ts).
 */
export function reconcileFailed(d: DeploymentRecord, f: { e: unknown; revision?: string; started: number; interval: number }, metrics: ControllerMetrics, log: Logger): Outcome {
  const err = f.e instanceof StrataError ? f.e : new StrataError('INTERNAL', f.e instanceof Error ? f.e.message : String(f.e));
  const { terminal, reason } = classOf(err.code);
  const keeps = d.status.generation === undefined ? 'nothing is deployed' : `generation ${d.status.generation} keeps running`;
  const message = withAbandonRoute(d.config.name, err, `${f.revision ? `commit ${f.revision.slice(0, 12)}: ` : ''}${err.message}`);
  d.status.plan = undefined;
  if (f.revision) {
    d.status.lastFailedRevision = f.revision;
    d.status.lastFailure = { revision: f.revision, reason, message: err.message, terminal, at: new Date().toISOString() };
  }
  markFailed(d.status, { reason, message, keeps, terminal });
  if (err.code === 'STEP_FAILED') metrics.transitions.inc({ deployment: d.config.name, result: 'rolled_back' });
  const took = formatDuration(Date.now() - f.started);
  if (terminal) {
    log.error({ code: err.code }, `reconcile failed after ${took}: ${err.message}; ${keeps}; this commit will not be retried, next look for a newer one in ${formatDuration(f.interval)}`);
    return { result: 'stalled', requeueAfterMs: f.interval };
  }
  const delay = retryAfter(d, 'reconcile');
  log.error({ code: err.code, failures: d.retries.count('reconcile') }, `reconcile failed after ${took}: ${err.message}; ${keeps}; next try in ${formatDuration(delay)}`);
  return { result: 'failed', requeueAfterMs: delay };
}
