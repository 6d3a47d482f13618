import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { adoptDeployment, type AdoptOptions, type AdoptResult } from '../api/adopt.ts';
import { credentialIssues } from '../api/credentialIssues.ts';
import { recoverDeployment } from '../api/apply.ts';
import type { Services } from '../api/context.ts';
import { servicesFor } from '../cli/services.ts';
import { sshEnvironment } from '../targets/sshEnv.ts';
import { loadDeployment } from '../api/load.ts';
import { backoffDelay, formatDuration } from './backoff.ts';
import { ModelError, StrataError } from '../errors.ts';
import { connectionSettings, type ControllerConfig, type DeploymentConfig } from './config.ts';
import { ControllerMetrics } from './metrics.ts';
import { KeyedQueue } from './queue.ts';
import { abandonMachine } from '../api/abandon.ts';
import { reconcileDeployment, recordApplied, withAbandonRoute, type AbandonOutcome, type DeploymentRuntime } from './reconciler.ts';
import { readSecret } from './secrets.ts';
import type { DeploymentSource } from './source.ts';
import { newStatus, setCondition, type DeploymentStatus } from './status.ts';
import { DeliveryLog } from './deliveryLog.ts';
import { deliveryId, hasCredentials, MAX_DELIVERY_ID, verifyWebhook } from './webhook.ts';

export interface ControllerOptions {
  log: Logger;
  /** Makes the source of a deployment (src/git in production; tests may pass others). */
  sourceFor: (d: DeploymentConfig, stateDir: string) => DeploymentSource;
  /** The state store, runtimes and live transitions (default: the real ones of the state directory, src/cli/services.ts). */
  services?: Services;
  /** Deployments reconciled at once (default 4); one deployment never runs twice at once. */
  workers?: number;
}

interface Notes {
  suspended?: boolean;
  lastFailure?: DeploymentStatus['lastFailure'];
  lastFailedRevision?: string;
  lastAppliedRevision?: string;
}

export class NotFoundError extends StrataError {}

/**
 * Keeps every configured deployment equal to its branch. Watches, webhooks, timers and API
 * calls only add keys to a de-duplicating queue; workers reconcile (src/controller/reconciler.ts).
 */
export class Controller {
  readonly metrics = new ControllerMetrics();
  private readonly queue = new KeyedQueue();
  /** Webhook deliveries seen in the last hour, by deployment and delivery id. */
  private readonly deliveries = new DeliveryLog();
  private readonly deployments = new Map<string, DeploymentRuntime>();
  private readonly stopWatches: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private started = false;
  private stopping = false;
  /** One set for the process: every apply and recovery sees the others' live transitions. */
  private readonly services: Services;

  constructor(
    readonly config: ControllerConfig,
    private readonly opts: ControllerOptions,
  ) {
    this.services = opts.services ?? servicesFor(config.stateDir);
    for (const d of config.deployments) {
      const source = opts.sourceFor(d, config.stateDir);
      const status = newStatus(d.name, source.label, d.suspended);
      setCondition(status, 'Ready', 'Unknown', 'Starting', 'not reconciled yet');
      const runtime: DeploymentRuntime = { config: d, source, status };
      this.deployments.set(d.name, runtime);
      // A damaged state file fails this deployment only; the others and the API keep running.
      try {
        this.restoreNotes(runtime);
      } catch (e) {
        this.markStateFailed(runtime, e);
      }
    }
  }

  /** Takes up what the state directory recorded of a deployment: its notes and current generation. */
  private restoreNotes(d: DeploymentRuntime): void {
    const store = this.services.state;
    const name = d.config.name;
    const notes = store.readControllerNotes<Notes>(name) ?? {};
    if (notes.suspended !== undefined) d.status.suspended = notes.suspended;
    d.status.lastFailure = notes.lastFailure;
    d.status.lastFailedRevision = notes.lastFailedRevision;
    const current = store.current(name);
    if (current) {
      const revision = store.generation(name, current.generation).commit?.sha ?? notes.lastAppliedRevision;
      if (revision) recordApplied(d, this.metrics, revision, current.generation);
      else d.status.generation = current.generation;
      this.metrics.machines.set({ deployment: name }, Object.keys(current.manifest.machines).length);
    }
  }

  /** Reads a damaged deployment's state again: true (and the failure cleared) once it reads. */
  private stateReadable(d: DeploymentRuntime): boolean {
    try {
      this.restoreNotes(d);
      d.stateDamaged = false;
      return true;
    } catch (e) {
      this.markStateFailed(d, e);
      return false;
    }
  }

  /** Marks a deployment failed because its state cannot be read (StateCorrupt names the file). */
  private markStateFailed(d: DeploymentRuntime, e: unknown): void {
    d.stateDamaged = true;
    const code = e instanceof StrataError ? e.code : 'INTERNAL';
    const message = `its recorded state cannot be read: ${e instanceof Error ? e.message : String(e)}`;
    const reason = code === 'STATE_CORRUPT' ? 'StateCorrupt' : 'StateUnreadable';
    setCondition(d.status, 'Ready', 'False', reason, message);
    setCondition(d.status, 'Reconciling', 'False', reason, message);
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
            const r = await recoverDeployment(name, { stateDir: this.config.stateDir, services: this.services, ...connectionSettings(d.config) });
            if (r.action !== 'none') log.warn({ recovery: r.action, generation: r.generation }, `recovery: ${r.message}`);
          } catch (e) {
            failed.push(name);
            const message = withAbandonRoute(name, e, `cannot recover the interrupted transition yet: ${e instanceof Error ? e.message : String(e)}`);
            setCondition(d.status, 'Ready', 'False', e instanceof StrataError && e.code === 'STATE_CORRUPT' ? 'StateCorrupt' : 'RecoveryFailed', message);
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
    return this.statusOf(this.runtime(name));
  }

  /** Reconcile now; a commit that failed before is tried again. */
  sync(name: string): DeploymentStatus {
    const d = this.runtime(name);
    d.forceRetry = true;
    this.enqueue(name, 'sync requested');
    return this.statusOf(d);
  }

  suspend(name: string): DeploymentStatus {
    const d = this.runtime(name);
    d.status.suspended = true;
    setCondition(d.status, 'Reconciling', 'False', 'Suspended', 'suspended through the API');
    this.persist(d);
    this.opts.log.info({ deployment: name }, 'suspended: the repository is not followed until resumed');
    return this.statusOf(d);
  }

  resume(name: string): DeploymentStatus {
    const d = this.runtime(name);
    d.status.suspended = false;
    this.persist(d);
    this.enqueue(name, 'resumed');
    return this.statusOf(d);
  }

  /** Rolls back through the queue (never beside a reconcile) and resolves when it is done. */
  rollback(name: string, to?: number): Promise<{ ok: boolean; generation?: number; message: string }> {
    const d = this.runtime(name);
    if (d.pendingRollback) throw new StrataError('ROLLBACK_PENDING', `a rollback of ${name} is already waiting`);
    return new Promise((settle) => {
      d.pendingRollback = { to, settle };
      this.enqueue(name, `rollback${to ? ` to generation ${to}` : ''} requested`);
    });
  }

  /**
   * Rebuilds the deployment's recorded state from its machines (src/api/adopt.ts), with the
   * machines named by the models of the branch's current commit; then reconciles. Takes the
   * deployment's transition lock, so it never runs beside a reconcile (MACHINE_LOCKED: 409).
   */
  async adopt(name: string, opts: AdoptOptions): Promise<AdoptResult> {
    const d = this.runtime(name);
    const { commit } = await d.source.sync();
    const { models, manifest } = await loadDeployment(d.config.path, d.source.tree(commit));
    const ctx = { stateDir: this.config.stateDir, services: this.services, controller: true, ...connectionSettings(d.config) };
    // The repository's models name the machines asked: their credential files are the operator's choice, as for a reconcile.
    const refused = credentialIssues(models, ctx.credentials);
    if (refused.length > 0) throw new ModelError(refused);
    const result = await adoptDeployment(manifest, ctx, opts);
    this.opts.log.warn({ deployment: name, generation: result.generation, partial: result.partial }, `adopted generation ${result.generation} from the machines`);
    this.stateReadable(d);
    d.forceRetry = true;
    this.enqueue(name, 'state adopted');
    return result;
  }

  /**
   * Abandons a machine through the queue (never beside a reconcile of the deployment, and before
   * the recovery that keeps failing on it) and resolves when it is done (src/api/abandon.ts).
   */
  abandonMachine(name: string, machine: string, reason: string, by: string): Promise<AbandonOutcome> {
    const d = this.runtime(name);
    if (d.pendingAbandon) throw new StrataError('ABANDON_PENDING', `abandoning ${d.pendingAbandon.machine} of ${name} is already waiting`);
    return new Promise((settle) => {
      d.pendingAbandon = { machine, reason, by, settle };
      this.enqueue(name, `abandon ${machine} requested`);
    });
  }

  private async runAbandon(d: DeploymentRuntime): Promise<void> {
    const req = d.pendingAbandon!;
    d.pendingAbandon = undefined;
    const name = d.config.name;
    const log = this.opts.log.child({ deployment: name });
    try {
      const r = await abandonMachine({ deployment: name, machine: req.machine, reason: req.reason, by: req.by }, { stateDir: this.config.stateDir, services: this.services, controller: true, ...connectionSettings(d.config) });
      if (r.recorded !== undefined) d.status.generation = r.recorded;
      d.status.consecutiveFailures = 0;
      setCondition(d.status, 'Ready', 'Unknown', 'MachineAbandoned', `${r.message}; reconciling`);
      log.warn({ audit: r.audit, generation: r.recorded, recovery: r.recovery?.action }, r.message);
      req.settle({ ok: true, ...(r.recorded !== undefined ? { generation: r.recorded } : {}), message: r.message });
    } catch (e) {
      const message = `abandoning ${req.machine} failed: ${e instanceof Error ? e.message : String(e)}`;
      log.error({ code: e instanceof StrataError ? e.code : 'INTERNAL' }, message);
      req.settle({ ok: false, message, ...(e instanceof StrataError ? { code: e.code } : {}) });
    }
  }

  /**
   * Refuses a webhook request that cannot succeed before its body is read (and buffered): an
   * unknown deployment, one without a webhook, a request with no signature or token at all.
   */
  webhookRefusal(name: string, headers: IncomingHttpHeaders): { status: number; message: string } | undefined {
    const d = this.runtime(name);
    if (!d.config.webhook) return { status: 404, message: `deployment ${name} has no webhook configured` };
    if (!hasCredentials(headers)) {
      this.metrics.webhookDeliveries.inc({ deployment: name, result: 'refused' });
      this.opts.log.warn({ deployment: name }, 'refused a webhook: no signature or token');
      return { status: 401, message: 'a webhook needs a signature or token (docs/controller.md, "Webhooks")' };
    }
    return undefined;
  }

  /**
   * Verifies a push notification; a good one queues a reconcile, a bad one queues nothing.
   * A delivery id seen in the last hour (a retry, a redelivery, a replay) is acknowledged and
   * queues nothing. Ids are recorded only after the signature or token matched, so a sender
   * without the secret cannot make the controller ignore a real delivery.
   */
  webhook(name: string, headers: IncomingHttpHeaders, body: Buffer): { status: number; message: string } {
    const d = this.runtime(name);
    if (!d.config.webhook) return { status: 404, message: `deployment ${name} has no webhook configured` };
    const check = verifyWebhook(headers, body, readSecret(d.config.webhook.secret, `webhook secret of ${name}`));
    if (!check.ok) {
      this.metrics.webhookDeliveries.inc({ deployment: name, result: 'refused' });
      this.opts.log.warn({ deployment: name, provider: check.provider }, `refused a webhook: ${check.reason}`);
      return { status: 401, message: check.reason ?? 'unauthorized' };
    }
    const delivery = deliveryId(headers, check.provider);
    if (delivery && delivery.id.length > MAX_DELIVERY_ID) {
      this.metrics.webhookDeliveries.inc({ deployment: name, result: 'refused' });
      return { status: 400, message: `${delivery.header} is over ${MAX_DELIVERY_ID} characters: not a delivery id` };
    }
    if (delivery) {
      const key = `${name}\0${delivery.id}`;
      const seenAt = this.deliveries.seen(key);
      if (seenAt !== undefined) {
        this.metrics.webhookDeliveries.inc({ deployment: name, result: 'replayed' });
        this.opts.log.info({ deployment: name, provider: check.provider, delivery: delivery.id }, 'a webhook delivery seen before was acknowledged and ignored');
        return { status: 200, message: `delivery ${delivery.id} was received already at ${new Date(seenAt).toISOString()}; nothing queued` };
      }
      this.deliveries.record(key);
    }
    this.metrics.webhookDeliveries.inc({ deployment: name, result: 'queued' });
    this.enqueue(name, `${check.provider} push${check.ref ? ` to ${check.ref}` : ''}`);
    return { status: 202, message: `reconcile of ${name} queued` };
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
        if (d.pendingAbandon) await this.runAbandon(d);
        if (d.stateDamaged && !this.stateReadable(d)) {
          d.status.consecutiveFailures++;
          const delay = backoffDelay(d.status.consecutiveFailures);
          this.opts.log.warn({ deployment: name }, `its state is still damaged; not reconciled, next look in ${formatDuration(delay)}`);
          if (!this.stopping) this.queue.addAfter(name, delay);
          continue;
        }
        if ((await this.recoverInterrupted([name])).length > 0) {
          d.status.consecutiveFailures++;
          const delay = backoffDelay(d.status.consecutiveFailures);
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
        this.opts.log.error({ deployment: name, err: e }, 'reconcile crashed; next try in 60s');
        if (!this.stopping) this.queue.addAfter(name, 60_000);
      } finally {
        this.queue.done(name);
      }
    }
  }

  private persist(d: DeploymentRuntime): void {
    // (A damaged controller.json is replaced by the notes held in memory.)
    const notes: Notes = {
      suspended: d.status.suspended,
      lastFailure: d.status.lastFailure,
      lastFailedRevision: d.status.lastFailedRevision,
      lastAppliedRevision: d.status.lastAppliedRevision,
    };
    this.services.state.writeControllerNotes(d.config.name, notes);
  }

  private runtime(name: string): DeploymentRuntime {
    const d = this.deployments.get(name);
    if (!d) throw new NotFoundError('DEPLOYMENT_NOT_FOUND', `no deployment named ${name}`, { deployment: name });
    return d;
  }

  private statusOf(d: DeploymentRuntime): DeploymentStatus {
    const due = this.queue.dueAt(d.config.name);
    return structuredClone({ ...d.status, ...(due ? { nextReconcileAt: new Date(due).toISOString() } : {}) });
  }
}
