import type { Logger } from 'pino';
import { abandonMachine } from '../api/abandon.ts';
import type { Services } from '../api/context.ts';
import { StrataError } from '../errors.ts';
import { deploymentContext } from './deploymentContext.ts';
import { markAbandoned } from './conditions.ts';
import { retrySucceeded, type DeploymentRecord, type Intent } from './deploymentRecord.ts';

/**
 * Abandons a machine asked through the API (src/api/abandon.ts), before the recovery that keeps
 * failing on it; settles the request whatever happens. Runs even on damaged state, then fails
 * with STATE_CORRUPT.
 */
export async function runAbandon(d: DeploymentRecord, req: Extract<Intent, { kind: 'abandon' }>, services: Services, stateDir: string, log: Logger): Promise<void> {
  const name = d.config.name;
  try {
    const r = await abandonMachine({ deployment: name, machine: req.machine, reason: req.reason, by: req.by }, deploymentContext(d.config, stateDir, services));
    if (r.recorded !== undefined) d.status.generation = r.recorded;
    // The recovery that failed on the machine has nothing left to fail on.
    retrySucceeded(d, 'recovery');
    markAbandoned(d.status, r.message);
    log.warn({ audit: r.audit, generation: r.recorded, recovery: r.recovery?.action }, r.message);
    req.settle({ ok: true, ...(r.recorded !== undefined ? { generation: r.recorded } : {}), message: r.message });
  } catch (e) {
    const message = `abandoning ${req.machine} failed: ${e instanceof Error ? e.message : String(e)}`;
    log.error({ code: e instanceof StrataError ? e.code : 'INTERNAL' }, message);
    req.settle({ ok: false, message, ...(e instanceof StrataError ? { code: e.code } : {}) });
  }
}
