import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { adoptDeployment, type AdoptOptions, type AdoptResult } from '../api/adopt.ts';
import { credentialIssues } from '../api/credentialIssues.ts';
import { recoverDeployment } from '../api/apply.ts';
import type { Services } from '../api/context.ts';
import { servicesFor } from '../api/services.ts';
import { sshEnvironment } from '../targets/sshEnv.ts';
import { loadDeployment } from '../api/load.ts';
import { formatDuration } from '../lib/backoff.ts';
import { ModelError, StrataError } from '../errors.ts';
import { runAbandon } from './abandonIntent.ts';
import { markRecoveryFailed, markStateUnreadable, markSuspended } from './conditions.ts';
import type { ControllerConfig, DeploymentConfig } from './config.ts';
import { deploymentContext } from './deploymentContext.ts';
import { newRecord, queueIntent, retryAfter, retrySucceeded, takeIntent, type DeploymentRecord, type IntentOutcome } from './deploymentRecord.ts';
import { withAbandonRoute } from './failure.ts';
import { ControllerMetrics } from './metrics.ts';
import { persistNotes, restoreNotes } from './notes.ts';
import { KeyedQueue } from './queue.ts';
import { reconcileDeployment } from './reconciler.ts';
import { CRASH_RETRY_MS } from './retry.ts';
import type { RevisionSource } from './revisionSource.ts';
import type { DeploymentStatus } from './status.ts';
import { WebhookIntake } from './webhookIntake.ts';

export interface ControllerOptions {
  log: Logger;
  /** Makes the revision source of a deployment (src/controller/gitSource.ts in production; tests may pass others). */
  sourceFor: (d: DeploymentConfig, stateDir: string) => RevisionSource;
  /** The state store, runtimes and live transitions (default: the real ones of the state directory, src/api/services.ts). */
  services?: Services;
  /** Deployments reconciled at once (default 4); one deployment never runs twice at once. */
  workers?: number;
}

export class NotFoundError extends StrataError {}

/**
 * Keeps every configured deployment equal to its branch. Watches, webhooks, timers and API
 * calls only add keys to a de-duplicating queue; workers reconcile (src/controller/reconciler.ts).
 */
export class Controller {
  readonly metrics = new ControllerMetrics();
  private readonly queue = new KeyedQueue();
  private readonly webhooks = new WebhookIntake({ metrics: this.metrics, log: () => this.opts.log, enqueue: (name, why) => this.enqueue(name, why) });
  private readonly deployments = new Map<string, DeploymentRecord>();
  private readonly stopWatches: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private started = false;
  private stopping = false;
  /** One set for the process: every apply and recovery sees the others' live transitions. */
  /** What every operation of this controller works with (src/api/services.ts): one set per process. */
  readonly services: Services;

  constructor(
    readonly config: ControllerConfig,
    private readonly opts: ControllerOptions,
  ) {
    this.services = opts.services ?? servicesFor(config.stateDir);
    for (const d of config.deployments) {
      const record = newRecord(d, opts.sourceFor(d, config.stateDir));
      this.deployments.set(d.name, record);
      // A damaged state file fails this deployment only; the others and the API keep running.
      try {
        restoreNotes(record, this.services.state, this.metrics);
      } catch (e) {
        this.markStateFailed(record, e);
      }
    }
  }

  /** Reads a damaged deployment's state again: true (and the failure cleared) once it reads. */
  private stateReadable(d: DeploymentRecord): boolean {
    try {
      restoreNotes(d, this.services.state, this.metrics);
      d.stateDamaged = false;
      retrySucceeded(d, 'state');
      return true;
    } catch (e) {
      this.markStateFailed(d, e);
      return false;
    }
  }

  /** Marks a deployment failed because its state cannot be read (StateCorrupt names the file). */
  private markStateFailed(d: DeploymentRecord, e: unknown): void {
    d.stateDamaged = true;
    const code = e instanceof StrataError ? e.code : 'INTERNAL';
    const message = `its recorded state cannot be read: ${e instanceof Error ? e.message : String(e)}`;
    markStateUnreadable(d.status, code === 'STATE_CORRUPT' ? 'StateCorrupt' : 'StateUnreadable', message);
    this.opts.log.error({ deployment: d.config.name, code, file: e instanceof StrataError ? e.data.file : undefined }, message);
  }

  /** Starts watches and workers and queues every deployment once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.warnSharedKey();
    for (const d of this.deployments.values()) {
      if (d.source.watch) this.stopWatches.push(d.source.watch(() => this.enqueue(d.config.name, 'repository changed')));
      this.queue.add(d.config.name);
    }
    const n = Math.max(1, Math.min(this.opts.workers ?? 4, this.deployments.size));
    // A transition that a crash of this controller interrupted is recovered before any reconcile.
    const recovered = this.recoverInterrupted().catch((e: unknown) => this.opts.log.error({ err: e }, 'recovery at start failed'));
    this.workers = Array.from({ length: n }, () => recovered.then(() => this.work()));
  }

  /**
   * The process-wide key (STRATA_SSH_KEY_FILE, STRATA_SSH_KEY) serves every deployment that has
   * none of its own: each of their repositories can then reach the machines of the others.
   */
  private warnSharedKey(): void {
    const env = sshEnvironment();
    if (env.keyFile === undefined && !env.key) return;
    const sharing = this.config.deployments.filter((d) => !d.ssh?.identity).map((d) => d.name);
    if (sharing.length < 2) return;
    this.opts.log.warn(
      { deployments: sharing },
      `deployments ${sharing.join(', ')} have no SSH key of their own and share the controller's (STRATA_SSH_KEY_FILE / STRATA_SSH_KEY): each one's repository can reach every machine that key opens; give each its own in deployments[].ssh.identity`,
    );
  }

  /**
   * Recovers every deployment whose journal holds an interrupted transition (src/apply/recover.ts).
   * One that cannot be recovered yet (a machine unreachable) is retried before its reconciles.
   */
  private async recoverInterrupted(names = [...this.deployments.keys()]): Promise<string[]> {
    const store = this.services.state;
    const failed: string[] = [];
    await Promise.all(
      names
        .filter((name) => store.hasJournal(name))
        .map(async (name) => {
          const d = this.deployments.get(name)!;
          const log = this.opts.log.child({ deployment: name });
          try {
            const r = await recoverDeployment(name, deploymentContext(d.config, this.config.stateDir, this.services));
            retrySucceeded(d, 'recovery');
            if (r.action !== 'none') log.warn({ recovery: r.action, generation: r.generation }, `recovery: ${r.message}`);
          } catch (e) {
            failed.push(name);
            const message = withAbandonRoute(name, e, `cannot recover the interrupted transition yet: ${e instanceof Error ? e.message : String(e)}`);
            markRecoveryFailed(d.status, e instanceof StrataError && e.code === 'STATE_CORRUPT' ? 'StateCorrupt' : 'RecoveryFailed', message);
            log.error({ code: e instanceof StrataError ? e.code : 'INTERNAL' }, message);
          }
        }),
    );
    return failed;
  }

  /** Stops taking work and waits for the reconciles in flight: a transition finishes or rolls back. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const stop of this.stopWatches.splice(0)) stop();
    this.queue.close();
    await Promise.all(this.workers);
  }

  get ready(): boolean {
    return this.started && !this.stopping;
  }

  list(): DeploymentStatus[] {
    return [...this.deployments.values()].map((d) => this.statusOf(d));
  }

  get(name: string): DeploymentStatus {
    return this.statusOf(this.record(name));
  }

  /** Reconcile now; a commit that failed before is tried again. */
  sync(name: string): DeploymentStatus {
    const d = this.record(name);
    queueIntent(d, { kind: 'retry-commit' });
    this.enqueue(name, 'sync requested');
    return this.statusOf(d);
  }

  suspend(name: string): DeploymentStatus {
    const d = this.record(name);
    d.status.suspended = true;
    markSuspended(d.status, 'suspended through the API');
    this.persist(d);
    this.opts.log.info({ deployment: name }, 'suspended: the repository is not followed until resumed');
    return this.statusOf(d);
  }

  resume(name: string): DeploymentStatus {
    const d = this.record(name);
    d.status.suspended = false;
    this.persist(d);
    this.enqueue(name, 'resumed');
    return this.statusOf(d);
  }

  /** Rolls back through the queue (never beside a reconcile) and resolves when it is done. */
  rollback(name: string, to?: number): Promise<IntentOutcome> {
    const d = this.record(name);
    return new Promise((settle) => {
      queueIntent(d, { kind: 'rollback', ...(to !== undefined ? { to } : {}), settle });
      this.enqueue(name, `rollback${to ? ` to generation ${to}` : ''} requested`);
    });
  }

  /**
   * Rebuilds the deployment's recorded state from its machines (src/api/adopt.ts), with the
   * machines named by the models of the branch's current commit; then reconciles. Takes the
   * deployment's transition lock, so it never runs beside a reconcile (STATE_LOCKED: 409).
   */
  async adopt(name: string, opts: AdoptOptions): Promise<AdoptResult> {
    const d = this.record(name);
    const { commit } = await d.source.sync();
    const { models, manifest } = await loadDeployment(d.config.path, d.source.tree(commit));
    const ctx = deploymentContext(d.config, this.config.stateDir, this.services);
    // The repository's models name the machines asked: their credential files are the operator's choice, as for a reconcile.
    const refused = credentialIssues(models, ctx.credentials);
    if (refused.length > 0) throw new ModelError(refused);
    const result = await adoptDeployment(manifest, ctx, opts);
    this.opts.log.warn({ deployment: name, generation: result.generation, partial: result.partial }, `adopted generation ${result.generation} from the machines`);
    this.stateReadable(d);
    queueIntent(d, { kind: 'retry-commit' });
    this.enqueue(name, 'state adopted');
    return result;
  }

  /**
   * Abandons a machine through the queue (never beside a reconcile of the deployment, and before
   * the recovery that keeps failing on it) and resolves when it is done (src/api/abandon.ts).
   */
  abandonMachine(name: string, machine: string, reason: string, by: string): Promise<IntentOutcome> {
    const d = this.record(name);
    return new Promise((settle) => {
      queueIntent(d, { kind: 'abandon', machine, reason, by, settle });
      this.enqueue(name, `abandon ${machine} requested`);
    });
  }

  /** Refuses a webhook request that cannot succeed before its body is read (src/controller/webhookIntake.ts). */
  webhookRefusal(name: string, headers: IncomingHttpHeaders): { status: number; message: string } | undefined {
    return this.webhooks.refusal(this.record(name), headers);
  }

  /** Verifies a push notification; a good one queues a reconcile (src/controller/webhookIntake.ts). */
  webhook(name: string, headers: IncomingHttpHeaders, body: Buffer): { status: number; message: string } {
    return this.webhooks.deliver(this.record(name), headers, body);
  }

  private enqueue(name: string, why: string): void {
    if (this.stopping) return;
    this.opts.log.debug({ deployment: name }, `queued: ${why}`);
    this.queue.add(name);
  }

  private async work(): Promise<void> {
    for (;;) {
      const name = await this.queue.next();
      if (name === undefined) return;
      const d = this.deployments.get(name)!;
      try {
        // A pending abandon runs (and settles its request) even on damaged state: it then fails with STATE_CORRUPT.
        const abandon = takeIntent(d, 'abandon');
        if (abandon) await runAbandon(d, abandon, this.services, this.config.stateDir, this.opts.log.child({ deployment: name }));
        if (d.stateDamaged && !this.stateReadable(d)) {
          const delay = retryAfter(d, 'state');
          this.opts.log.warn({ deployment: name }, `its state is still damaged; not reconciled, next look in ${formatDuration(delay)}`);
          if (!this.stopping) this.queue.addAfter(name, delay);
          continue;
        }
        if ((await this.recoverInterrupted([name])).length > 0) {
          const delay = retryAfter(d, 'recovery');
          this.opts.log.warn({ deployment: name }, `recovery failed; next try in ${formatDuration(delay)}`);
          if (!this.stopping) this.queue.addAfter(name, delay);
          continue;
        }
        const outcome = await reconcileDeployment(d, {
          stateDir: this.config.stateDir,
          services: this.services,
          metrics: this.metrics,
          log: this.opts.log,
          persist: (x) => this.persist(x),
        });
        if (outcome.requeueAfterMs !== undefined && !this.stopping) this.queue.addAfter(name, outcome.requeueAfterMs);
      } catch (e) {
        this.opts.log.error({ deployment: name, err: e }, `reconcile crashed; next try in ${formatDuration(CRASH_RETRY_MS)}`);
        if (!this.stopping) this.queue.addAfter(name, CRASH_RETRY_MS);
      } finally {
        this.queue.done(name);
      }
    }
  }

  private persist(d: DeploymentRecord): void {
    persistNotes(d, this.services.state);
  }

  private record(name: string): DeploymentRecord {
    const d = this.deployments.get(name);
    if (!d) throw new NotFoundError('DEPLOYMENT_NOT_FOUND', `no deployment named ${name}`, { deployment: name });
    return d;
  }

  private statusOf(d: DeploymentRecord): DeploymentStatus {
    const due = this.queue.dueAt(d.config.name);
    return structuredClone({ ...d.status, ...(due ? { nextReconcileAt: new Date(due).toISOString() } : {}) });
  }
}
