import { backoffDelay } from '../lib/backoff.ts';

/**
 * Why a deployment is looked at again before its interval (docs/controller.md, "Reconcile"):
 * its reconcile failed, the recovery of an interrupted transition failed, or its recorded state
 * could not be read.
 */
export type RetryReason = 'reconcile' | 'recovery' | 'state';

/** Backoff of each reason: base × 2^(failures−1), capped, with jitter (src/lib/backoff.ts). */
const POLICIES: Record<RetryReason, { baseMs: number; maxMs: number }> = {
  reconcile: { baseMs: 5_000, maxMs: 300_000 },
  recovery: { baseMs: 5_000, maxMs: 300_000 },
  state: { baseMs: 5_000, maxMs: 300_000 },
};

/** A reconcile that threw past its own error handling (a bug) is looked at again after this. */
export const CRASH_RETRY_MS = 60_000;

/**
 * One deployment's retries: a policy per reason, each with its own count of failures in a
 * row, so a recovery that keeps failing does not lengthen the backoff of a later reconcile.
 * A success resets only its own reason's count.
 */
export class Retries {
  private readonly failures = new Map<RetryReason, number>();

  /** Counts a failure of `reason` and returns how long to wait before trying again. */
  failed(reason: RetryReason, random?: () => number): number {
    const n = this.count(reason) + 1;
    this.failures.set(reason, n);
    return backoffDelay(n, { ...POLICIES[reason], ...(random ? { random } : {}) });
  }

  succeeded(reason: RetryReason): void {
    this.failures.delete(reason);
  }

  count(reason: RetryReason): number {
    return this.failures.get(reason) ?? 0;
  }

  /** Failures in a row of whatever is failing now (the status's `consecutiveFailures`). */
  streak(): number {
    return Math.max(0, ...this.failures.values());
  }
}
