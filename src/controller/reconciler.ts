import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { applyDeployment } from '../api/apply.ts';
import { describeBroken } from '../apply/machineLocks.ts';
import { stateStore, type Context, type Services } from '../api/context.ts';
import { credentialIssues } from '../api/credentialIssues.ts';
import { loadDeployment } from '../api/load.ts';
import { planRollback } from '../api/rollback.ts';
import { ModelError, StrataError } from '../errors.ts';
import { isEmptyPlan } from '../plan/diff.ts';
import { planFromModels } from '../api/plan.ts';
import type { Plan } from '../plan/types.ts';
import { backoffDelay, formatDuration, withJitter } from './backoff.ts';
import { connectionSettings, type DeploymentConfig } from './config.ts';
import type { ControllerMetrics } from './metrics.ts';
import { checkDrift, DEFAULT_PROBE_INTERVAL_MS } from './drift.ts';
import type { DeploymentSource } from './source.ts';
import { conditionOf, markStep, setCondition, stepsOf, type DeploymentStatus } from './status.ts';

/** One deployment as the controller holds it between reconciles. */
export interface DeploymentRuntime {
  config: DeploymentConfig;
  source: DeploymentSource;
  status: DeploymentStatus;
  /** When the machines were last probed for drift (ms since epoch). */
  lastProbeAt?: number;
  /** Set when its state could not be read at start (STATE_CORRUPT): read again before each reconcile. */
  stateDamaged?: boolean;
  /** Set by `sync`: try the current commit even if it failed before. */
  forceRetry?: boolean;
  /** Set by `rollback`: the next reconcile rolls back instead. */
  pendingRollback?: { to?: number; settle: (r: { ok: boolean; generation?: number; message: string }) => void };
  /** Set by `abandonMachine`: run before the next recovery and reconcile. */
  pendingAbandon?: { machine: string; reason: string; by: string; settle: (r: AbandonOutcome) => void };
}

export interface AbandonOutcome {
  ok: boolean;
  generation?: number;
  message: string;
  code?: string;
}

/** The API route that abandons a machine, for messages about machines recovery cannot reach. */
export function withAbandonRoute(deployment: string, e: unknown, message: string): string {
  const machines = e instanceof StrataError && e.code === 'RECOVERY_FAILED' && Array.isArray(e.data.machines) ? (e.data.machines as string[]) : [];
  if (machines.length === 0) return message;
  return `${message} (through the API: POST /api/deployments/${deployment}/machines/${machines[0]}/abandon with {"reason": TEXT})`;
}

export interface ReconcileDeps {
  stateDir: string;
  services: Services;
  metrics: ControllerMetrics;
  log: Logger;
  /** Persists the deployment's status notes (failures, suspension) across restarts. */
  persist: (d: DeploymentRuntime) => void;
}

export type ReconcileResult = 'applied' | 'unchanged' | 'failed' | 'stalled' | 'suspended' | 'rolled-back';

export interface Outcome {
  result: ReconcileResult;
  /** When to look again; undefined: only when something (a webhook, a resume) asks. */
  requeueAfterMs?: number;
}

/** Errors that the same commit will hit again however often it is retried. */
const TERMINAL = new Set(['MODEL_INVALID', 'DEPLOYMENT_NAME_MISMATCH', 'ARTIFACT_MISSING', 'ARTIFACT_NOT_A_DIRECTORY', 'ARTIFACT_NOT_A_FILE', 'ARTIFACT_SPECIAL_FILE', 'ARTIFACT_UNSAFE_NAME', 'ARTIFACT_OUTSIDE_DEPLOYMENT', 'ARTIFACT_SYMLINK_LOOP']);

/**
 * Level-triggered: whatever asked for it, a reconcile re-reads the branch and the recorded
 * state and makes the machines match. A commit whose models are invalid is recorded as failed
 * and not tried again until a newer commit (or a `sync`); a failed transition is retried with
 * exponential backoff; success looks again after the interval.
 */
export async function reconcileDeployment(d: DeploymentRuntime, deps: ReconcileDeps): Promise<Outcome> {
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

  if (d.pendingRollback) return finish(await rollBack(d, deps, log));
  if (d.status.suspended) {
    setCondition(d.status, 'Reconciling', 'False', 'Suspended', 'suspended: not following the repository until resumed');
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
    if (failed?.terminal && failed.revision === revision && !d.forceRetry) {
      log.info(`commit ${revision.slice(0, 12)} failed before (${failed.reason}); waiting for a newer commit, next look in ${formatDuration(interval)}`);
      return finish({ result: 'stalled', requeueAfterMs: interval });
    }
    d.forceRetry = false;

    const tree = d.source.tree(revision);
    const { models, manifest } = await loadDeployment(d.config.path, tree);
    if (models.name !== name) {
      throw new StrataError('DEPLOYMENT_NAME_MISMATCH', `${d.config.path} names deployment "${models.name}", but the controller configures it as "${name}"`);
    }
    const ctx: Context = { stateDir: deps.stateDir, services: deps.services, controller: true, ...connectionSettings(d.config) };
    // The repository chose these models; what they name on this host must be the operator's choice too.
    const refused = credentialIssues(models, ctx.credentials!);
    if (refused.length > 0) throw new ModelError(refused);
    const plan = planFromModels(models, manifest, ctx);
    if (isEmptyPlan(plan)) {
      if (plan.basis.generation !== null) recordApplied(d, deps.metrics, revision, plan.basis.generation);
      succeed(d, `generation ${plan.basis.generation} runs commit ${revision.slice(0, 12)}`);
      if (plan.basis.generation !== null && Date.now() - (d.lastProbeAt ?? 0) >= probeEvery) {
        d.lastProbeAt = Date.now();
        const action = await checkDrift(d, ctx, deps.metrics, log, tree);
        if (action === 'heal-failed') setCondition(d.status, 'Ready', 'False', 'DriftNotHealed', `drift could not be restored; generation ${plan.basis.generation} is damaged on some machine`);
        if (action === 'reported') setCondition(d.status, 'Ready', 'False', 'Drifted', `${d.status.drift!.items.length} item(s) drifted; selfHeal is off`);
      }
      const next = Math.min(interval, probeEvery);
      log.info(`up to date at generation ${plan.basis.generation}; next look in ${formatDuration(next)}`);
      return finish({ result: 'unchanged', requeueAfterMs: next });
    }

    const info = await d.source.commitInfo(revision);
    log.info({ steps: plan.steps.length, machines: plan.machines.length }, `applying commit ${revision.slice(0, 12)} (${firstLine(info.message)}) as generation ${plan.generation}`);
    const result = await applyTracked(d, plan, revision, ctx, log, { tree, commit: info, source: d.source.label });
    recordApplied(d, deps.metrics, revision, result.generation);
    recordTransition(deps.metrics, name, plan, Object.keys(manifest.machines).length);
    succeed(d, `generation ${result.generation} runs commit ${revision.slice(0, 12)}`);
    const next = Math.min(interval, probeEvery);
    log.info({ generation: result.generation, ms: result.durationMs }, `deployed commit ${revision.slice(0, 12)} as generation ${result.generation} in ${formatDuration(result.durationMs)}; next look in ${formatDuration(next)}`);
    return finish({ result: 'applied', requeueAfterMs: next });
  } catch (e) {
    return finish(fail(d, deps, log, e, revision, started, interval));
  }
}

function fail(d: DeploymentRuntime, deps: ReconcileDeps, log: Logger, e: unknown, revision: string | undefined, started: number, interval: number): Outcome {
  const err = e instanceof StrataError ? e : new StrataError('INTERNAL', e instanceof Error ? e.message : String(e));
  const terminal = TERMINAL.has(err.code) || err instanceof ModelError;
  const reason = reasonOf(err.code);
  const keeps = d.status.generation === undefined ? 'nothing is deployed' : `generation ${d.status.generation} keeps running`;
  const message = withAbandonRoute(d.config.name, err, `${revision ? `commit ${revision.slice(0, 12)}: ` : ''}${err.message}`);
  d.status.plan = undefined;
  if (revision) {
    d.status.lastFailedRevision = revision;
    d.status.lastFailure = { revision, reason, message: err.message, terminal, at: new Date().toISOString() };
  }
  setCondition(d.status, 'Reconciling', 'False', reason, message);
  setCondition(d.status, 'Ready', 'False', reason, `${message} (${keeps})`);
  if (err.code === 'STEP_FAILED') deps.metrics.transitions.inc({ deployment: d.config.name, result: 'rolled_back' });
  const took = formatDuration(Date.now() - started);
  if (terminal) {
    setCondition(d.status, 'Stalled', 'True', reason, `${message}; waiting for a newer commit`);
    log.error({ code: err.code }, `reconcile failed after ${took}: ${err.message}; ${keeps}; this commit will not be retried, next look for a newer one in ${formatDuration(interval)}`);
    return { result: 'stalled', requeueAfterMs: interval };
  }
  d.status.consecutiveFailures++;
  const delay = backoffDelay(d.status.consecutiveFailures);
  log.error({ code: err.code, failures: d.status.consecutiveFailures }, `reconcile failed after ${took}: ${err.message}; ${keeps}; next try in ${formatDuration(delay)}`);
  return { result: 'failed', requeueAfterMs: delay };
}

/** What runs now, in the status and the metrics alike. */
export function recordApplied(d: DeploymentRuntime, metrics: ControllerMetrics, revision: string, generation: number): void {
  d.status.lastAppliedRevision = revision;
  d.status.generation = generation;
  metrics.setLastApplied(d.config.name, revision, generation);
}

function recordTransition(metrics: ControllerMetrics, name: string, plan: Plan, machines: number): void {
  metrics.transitions.inc({ deployment: name, result: 'succeeded' });
  metrics.lastAppliedTime.set({ deployment: name }, Date.now() / 1000);
  metrics.machinesReachable.set({ deployment: name }, plan.machines.length);
  metrics.machines.set({ deployment: name }, machines);
}

function succeed(d: DeploymentRuntime, message: string): void {
  d.status.consecutiveFailures = 0;
  d.status.plan = undefined;
  setCondition(d.status, 'Ready', 'True', 'Succeeded', message);
  setCondition(d.status, 'Reconciling', 'False', 'Succeeded', message);
  setCondition(d.status, 'Stalled', 'False', 'Succeeded', message);
}

/** Applies a plan while keeping the status's step list current (what runs, what waits on what). */
async function applyTracked(d: DeploymentRuntime, plan: Plan, revision: string, ctx: Context, log: Logger, opts: Parameters<typeof applyDeployment>[2]) {
  const steps = stepsOf(plan.steps);
  d.status.plan = { generation: plan.generation, revision, steps };
  setCondition(d.status, 'Reconciling', 'True', 'Progressing', `applying commit ${revision.slice(0, 12)} as generation ${plan.generation} (${plan.steps.length} steps)`);
  return applyDeployment(
    plan,
    {
      ...ctx,
      onEvent: (e) => {
        if (e.kind === 'step') markStep(steps, e.step.id, e.status === 'start' ? 'running' : e.status);
        if (e.kind === 'step' && e.status === 'failed') log.warn({ step: e.step.id, machine: e.step.machine }, `step ${e.step.id} failed: ${e.step.action} ${e.step.item.name} on ${e.step.machine}`);
        if (e.kind === 'undo') log.warn(`rolling back: undoing ${e.steps} steps`);
        if (e.kind === 'lock-broken') log.warn({ machine: e.machine, holder: e.holder }, describeBroken(e.machine, { ...e.holder, why: e.why }));
        if (e.kind === 'lock-lost') log.error({ machine: e.machine }, `lost the lock of ${e.machine}: ${e.error}`);
        if (e.kind === 'recovery') log.warn({ recovery: e.result.action, generation: e.result.generation }, `recovery: ${e.result.message}`);
      },
    },
    { rebaseAfterRecovery: true, ...opts },
  );
}

/**
 * A rollback asked for through the API: back to an earlier generation at once, then suspended,
 * so the controller does not re-apply the branch head it just rolled back from.
 */
async function rollBack(d: DeploymentRuntime, deps: ReconcileDeps, log: Logger): Promise<Outcome> {
  const pending = d.pendingRollback!;
  d.pendingRollback = undefined;
  const ctx: Context = { stateDir: deps.stateDir, services: deps.services, ...connectionSettings(d.config) };
  try {
    const { plan, target } = planRollback(d.config.name, ctx, pending.to);
    // The models now running came from the commit of the generation rolled back to.
    const commit = stateStore(ctx).generation(d.config.name, target).commit;
    const revision = commit?.sha ?? `generation-${target}`;
    const result = await applyTracked(d, plan, revision, ctx, log, { rolledBackTo: target, commit, source: `rollback to generation ${target}` });
    recordApplied(d, deps.metrics, revision, result.generation);
    recordTransition(deps.metrics, d.config.name, plan, Object.keys(plan.desired.machines).length);
    d.status.suspended = true;
    d.status.consecutiveFailures = 0;
    d.status.plan = undefined;
    const message = `rolled back to generation ${target} (recorded as generation ${result.generation}); suspended so the repository is not re-applied: resume to follow it again`;
    setCondition(d.status, 'Ready', 'True', 'RolledBack', message);
    setCondition(d.status, 'Reconciling', 'False', 'Suspended', message);
    log.warn({ generation: result.generation, to: target }, message);
    pending.settle({ ok: true, generation: result.generation, message });
    return { result: 'rolled-back' };
  } catch (e) {
    d.status.plan = undefined;
    const message = `rollback failed: ${e instanceof Error ? e.message : String(e)}`;
    log.error(message);
    pending.settle({ ok: false, message });
    return { result: 'failed', requeueAfterMs: intervalOf(d.config) };
  }
}

/** How often to look at the repository: its fetch interval for remotes (default 60 s), the deployment's interval otherwise (default 5 min), with jitter. */
export function intervalOf(c: DeploymentConfig): number {
  const reconcile = c.interval ?? 300_000;
  const fetch = isLocalUrl(c.repository.url) ? reconcile : (c.repository.interval ?? 60_000);
  return Math.round(withJitter(Math.min(reconcile, fetch), 0.1));
}

function isLocalUrl(url: string): boolean {
  return url.startsWith('/') || url.startsWith('.') || url.startsWith('file://');
}

function reasonOf(code: string): string {
  const map: Record<string, string> = {
    MODEL_INVALID: 'ModelInvalid',
    DEPLOYMENT_NAME_MISMATCH: 'ModelInvalid',
    STEP_FAILED: 'ApplyFailed',
    MACHINE_LOCKED: 'MachineLocked',
    STALE_PLAN: 'StatePending',
    STATE_CORRUPT: 'StateCorrupt',
    STATE_UNKNOWN_GENERATION: 'StateUnknown',
    CLAIM_CONFLICT: 'ClaimConflict',
  };
  if (Object.hasOwn(map, code)) return map[code]!;
  if (code.startsWith('ARTIFACT_')) return 'ArtifactInvalid';
  if (code.startsWith('GIT_')) return 'SourceUnavailable';
  if (['CONNECT_FAILED', 'CONNECT_TIMEOUT', 'HOST_KEY_MISMATCH', 'HOST_KEY_UNKNOWN', 'AUTH_FAILED', 'COMMAND_TIMEOUT', 'CONNECTION_LOST', 'EXEC_FAILED'].includes(code)) return 'MachineUnreachable';
  if (code === 'LOCK_LOST') return 'MachineLocked';
  if (code === 'MACHINE_ANSWER_TOO_LARGE' || code === 'MACHINE_ANSWER_INVALID') return 'MachineAnswerInvalid';
  if (code === 'RECOVERY_FAILED') return 'RecoveryFailed';
  if (code === 'CREDENTIAL_NOT_ALLOWED' || code === 'LOCAL_MACHINE_NOT_ALLOWED') return 'CredentialRefused';
  return 'ReconcileFailed';
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 72);
}
