import { randomUUID } from 'node:crypto';
import { applyDeployment } from '../api/apply.ts';
import type { Context } from '../api/context.ts';
import { credentialIssues } from '../api/credentialIssues.ts';
import { loadDeployment } from '../api/load.ts';
import { planFromModels } from '../api/plan.ts';
import { ModelError, StrataError } from '../errors.ts';
import { isLocalUrl } from '../git/url.ts';
import { isEmptyPlan } from '../plan/diff.ts';
import { formatDuration, withJitter } from '../lib/backoff.ts';
import { markSucceeded, markSuspended } from './conditions.ts';
import type { DeploymentConfig } from './config.ts';
import { deploymentContext } from './deploymentContext.ts';
import { hasIntent, retrySucceeded, takeIntent, type DeploymentRecord } from './deploymentRecord.ts';
import { checkDrift, DEFAULT_PROBE_INTERVAL_MS } from './drift.ts';
import { reconcileFailed } from './failure.ts';
import type { Outcome, ReconcileDeps } from './reconcileOutcome.ts';
import { runRollback } from './rollbackIntent.ts';
import { conditionOf } from './status.ts';
import { recordApplied, recordTransition, trackedContext } from './transition.ts';

export type { Outcome, ReconcileDeps, ReconcileResult } from './reconcileOutcome.ts';

/**
 * Level-triggered: whatever asked for it, a reconcile re-reads the branch and the recorded
 * state and makes the machines match. A commit whose models are invalid is recorded as failed
 * and not tried again until a newer commit (or a `sync`); a failed transition is retried with
 * exponential backoff; success looks again after the interval.
 */
export async function reconcileDeployment(d: DeploymentRecord, deps: ReconcileDeps): Promise<Outcome> {
  const started = Date.now();
  const name = d.config.name;
  let log = deps.log.child({ reconcileId: randomUUID().slice(0, 8), deployment: name });
  const finish = (outcome: Outcome): Outcome => {
    const seconds = (Date.now() - started) / 1000;
    deps.metrics.reconcileDuration.observe({ deployment: name, result: outcome.result }, seconds);
    deps.metrics.reconciles.inc({ deployment: name, result: outcome.result });
    deps.metrics.ready.set({ deployment: name }, conditionOf(d.status, 'Ready')?.status === 'True' ? 1 : 0);
    d.status.lastReconcileAt = new Date().toISOString();
    d.status.nextReconcileAt = outcome.requeueAfterMs === undefined ? undefined : new Date(Date.now() + outcome.requeueAfterMs).toISOString();
    deps.persist(d);
    return outcome;
  };

  const rollback = takeIntent(d, 'rollback');
  if (rollback) return finish(await runRollback(d, rollback, deps, log, intervalOf(d.config)));
  if (d.status.suspended) {
    markSuspended(d.status, 'suspended: not following the repository until resumed');
    log.info('deployment is suspended; nothing to do until it is resumed');
    return finish({ result: 'suspended' });
  }

  const interval = intervalOf(d.config);
  // Drift is probed between commits too: look again by the probe interval at the latest.
  const probeEvery = d.config.probeInterval ?? DEFAULT_PROBE_INTERVAL_MS;
  let revision: string | undefined;
  try {
    const sync = await d.source.sync();
    revision = sync.commit;
    log = log.child({ revision: revision.slice(0, 12) });
    d.status.lastAttemptedRevision = revision;
    if (sync.rewritten) {
      d.status.lastHistoryRewrite = { from: sync.previous, to: revision, at: new Date().toISOString() };
      log.warn({ previous: sync.previous }, `history rewritten: ${sync.ref} moved from ${sync.previous?.slice(0, 12)} to ${revision.slice(0, 12)}, which does not descend from it (force push)`);
    }

    const failed = d.status.lastFailure;
    if (failed?.terminal && failed.revision === revision && !hasIntent(d, 'retry-commit')) {
      log.info(`commit ${revision.slice(0, 12)} failed before (${failed.reason}); waiting for a newer commit, next look in ${formatDuration(interval)}`);
      return finish({ result: 'stalled', requeueAfterMs: interval });
    }
    takeIntent(d, 'retry-commit');

    const tree = d.source.tree(revision);
    const { models, manifest } = await loadDeployment(d.config.path, tree);
    if (models.name !== name) {
      throw new StrataError('DEPLOYMENT_NAME_MISMATCH', `${d.config.path} names deployment "${models.name}", but the controller configures it as "${name}"`);
    }
    const ctx: Context = deploymentContext(d.config, deps.stateDir, deps.services);
    // The repository chose these models; what they name on this host must be the operator's choice too.
    const refused = credentialIssues(models, ctx.credentials!);
    if (refused.length > 0) throw new ModelError(refused);
    const plan = planFromModels(models, manifest, ctx);
    if (isEmptyPlan(plan)) {
      if (plan.basis.generation !== null) recordApplied(d, deps.metrics, revision, plan.basis.generation);
      succeed(d, `generation ${plan.basis.generation} runs commit ${revision.slice(0, 12)}`);
      if (plan.basis.generation !== null && Date.now() - (d.lastProbeAt ?? 0) >= probeEvery) {
        d.lastProbeAt = Date.now();
        await checkDrift(d, ctx, deps.metrics, log, tree);
      }
      const next = Math.min(interval, probeEvery);
      log.info(`up to date at generation ${plan.basis.generation}; next look in ${formatDuration(next)}`);
      return finish({ result: 'unchanged', requeueAfterMs: next });
    }

    const info = await d.source.commitInfo(revision);
    log.info({ steps: plan.steps.length, machines: plan.machines.length }, `applying commit ${revision.slice(0, 12)} (${firstLine(info.message)}) as generation ${plan.generation}`);
    const result = await applyDeployment(plan, trackedContext(d, plan, revision, ctx, log), { rebaseAfterRecovery: true, tree, commit: info, source: d.source.label });
    recordApplied(d, deps.metrics, revision, result.generation);
    recordTransition(deps.metrics, name, plan);
    succeed(d, `generation ${result.generation} runs commit ${revision.slice(0, 12)}`);
    const next = Math.min(interval, probeEvery);
    log.info({ generation: result.generation, ms: result.durationMs }, `deployed commit ${revision.slice(0, 12)} as generation ${result.generation} in ${formatDuration(result.durationMs)}; next look in ${formatDuration(next)}`);
    return finish({ result: 'applied', requeueAfterMs: next });
  } catch (e) {
    return finish(reconcileFailed(d, { e, revision, started, interval }, deps.metrics, log));
  }
}

function succeed(d: DeploymentRecord, message: string): void {
  retrySucceeded(d, 'reconcile');
  d.status.plan = undefined;
  markSucceeded(d.status, message);
}

/** How often to look at the repository: its fetch interval for remotes (default 60 s), the deployment's interval otherwise (default 5 min), with jitter. */
export function intervalOf(c: DeploymentConfig): number {
  const reconcile = c.interval ?? 300_000;
  const fetch = isLocalUrl(c.repository.url) ? reconcile : (c.repository.interval ?? 60_000);
  return Math.round(withJitter(Math.min(reconcile, fetch), 0.1));
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 72);
}
