import { StrataError } from '../errors.ts';
import type { DeploymentConfig } from './config.ts';
import { markStarting } from './conditions.ts';
import { Retries, type RetryReason } from './retry.ts';
import type { RevisionSource } from './revisionSource.ts';
import { newStatus, type DeploymentStatus } from './status.ts';

/** How an operation asked through the API ended, as its HTTP answer says it (docs/controller.md). */
export interface IntentOutcome {
  ok: boolean;
  generation?: number;
  message: string;
  code?: string;
}

/**
 * Something asked of a deployment through the API, queued in its record and run by the worker
 * that next takes the deployment (never beside its reconcile): the level-triggered reconcile
 * re-reads everything, an intent says only what to do differently once.
 */
export type Intent =
  /** `sync` or `adopt`: try the branch's commit even if it failed before. */
  | { kind: 'retry-commit' }
  /** Back to generation `to` (default: the one before), then suspended (src/controller/rollbackIntent.ts). */
  | { kind: 'rollback'; to?: number; settle: (r: IntentOutcome) => void }
  /** Give up on a machine gone for good, before the recovery that fails on it (src/controller/abandonIntent.ts). */
  | { kind: 'abandon'; machine: string; reason: string; by: string; settle: (r: IntentOutcome) => void };

/** One deployment as the controller holds it between reconciles: the one place its state lives. */
export interface DeploymentRecord {
  readonly config: DeploymentConfig;
  readonly source: RevisionSource;
  /** What the API shows; its conditions are written only by src/controller/conditions.ts. */
  readonly status: DeploymentStatus;
  readonly retries: Retries;
  /** Intents asked and not yet run, at most one of each kind. */
  readonly intents: Intent[];
  /** When the machines were last probed for drift (ms since epoch). */
  lastProbeAt?: number;
  /** Set when its state could not be read at start (STATE_CORRUPT): read again before each reconcile. */
  stateDamaged?: boolean;
}

export function newRecord(config: DeploymentConfig, source: RevisionSource): DeploymentRecord {
  const status = newStatus(config.name, source.label, config.suspended);
  markStarting(status);
  return { config, source, status, retries: new Retries(), intents: [] };
}

type IntentOf<K extends Intent['kind']> = Extract<Intent, { kind: K }>;

/** Queues an intent; a second rollback or abandon while one waits is refused (ROLLBACK_PENDING, ABANDON_PENDING). */
export function queueIntent(d: DeploymentRecord, intent: Intent): void {
  const waiting = d.intents.find((i) => i.kind === intent.kind);
  if (waiting?.kind === 'rollback') throw new StrataError('ROLLBACK_PENDING', `a rollback of ${d.config.name} is already waiting`);
  if (waiting?.kind === 'abandon') throw new StrataError('ABANDON_PENDING', `abandoning ${waiting.machine} of ${d.config.name} is already waiting`);
  if (!waiting) d.intents.push(intent);
}

export function hasIntent(d: DeploymentRecord, kind: Intent['kind']): boolean {
  return d.intents.some((i) => i.kind === kind);
}

/** Removes and returns the waiting intent of that kind, if any. */
export function takeIntent<K extends Intent['kind']>(d: DeploymentRecord, kind: K): IntentOf<K> | undefined {
  const at = d.intents.findIndex((i) => i.kind === kind);
  return at < 0 ? undefined : (d.intents.splice(at, 1)[0] as IntentOf<K>);
}

/** Counts a failure (src/controller/retry.ts) and returns the delay before the next try. */
export function retryAfter(d: DeploymentRecord, reason: RetryReason): number {
  const delay = d.retries.failed(reason);
  d.status.consecutiveFailures = d.retries.streak();
  return delay;
}

export function retrySucceeded(d: DeploymentRecord, reason: RetryReason): void {
  d.retries.succeeded(reason);
  d.status.consecutiveFailures = d.retries.streak();
}
