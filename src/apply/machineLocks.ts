import { StrataError } from '../errors.ts';
import { processAlive } from '../lib/proc.ts';
import type { BrokenLock, LockHolder, MachineRuntime, UploadArtifact } from '../targets/runtimeApi.ts';
import { entry } from '../state/journal.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { ApplyEvent } from './events.ts';
import type { LiveTransitions } from './liveTransitions.ts';

/**
 * Machine locks as a transition holds them: taking one (breaking a stale or orphaned lock),
 * renewing its lease while the transition runs, and telling our own dead transitions' locks
 * from live ones. Used by apply and by recovery.
 */

/** How long a machine lock holds without renewal; a transition renews it every third of that. */
export const DEFAULT_LEASE_MS = 60_000;

/**
 * Whether a lock held under our own identity belongs to a transition that is gone: its process
 * died (or is this one, without that transition). Such a lock may be broken at once; any other
 * only when its lease has expired.
 */
export function isOwnOrphan(held: LockHolder, owner: string, live: LiveTransitions): boolean {
  if (held.owner !== owner) return false;
  if (held.pid === null) return false;
  if (held.pid === process.pid) return !live.has(held.token);
  return !processAlive(held.pid);
}

export interface LockSpec {
  owner: string;
  token: string;
  leaseMs: number;
  /** The transitions running in this process: a lock of ours held by none of them is an orphan. */
  live: LiveTransitions;
}

/**
 * Takes (or re-takes, with the same token) a machine's lock. A stale lock is broken by the
 * runtime when its lease expired; one left by a dead process of this controller is broken at
 * once. Says so through `onBroken`. Resolves with those of `hashes` the machine's store lacks;
 * with `upload`, the lock command stores those artifacts first (nothing is then missing).
 */
export async function takeLock(
  rt: MachineRuntime,
  lock: LockSpec,
  onBroken: (b: BrokenLock) => void,
  hashes: readonly string[] = [],
  upload?: readonly UploadArtifact[],
): Promise<{ missing: string[] }> {
  const req = { owner: lock.owner, token: lock.token, pid: process.pid, leaseMs: lock.leaseMs };
  let taken: Awaited<ReturnType<MachineRuntime['lock']>>;
  try {
    taken = await rt.lock(req, hashes, upload);
  } catch (e) {
    const held = e instanceof StrataError && e.code === 'MACHINE_LOCKED' ? (e.data.held as LockHolder | undefined) : undefined;
    if (!held || !isOwnOrphan(held, lock.owner, lock.live)) throw e;
    taken = await rt.lock({ ...req, breakToken: held.token }, hashes, upload);
  }
  if (taken.broke) onBroken(taken.broke);
  return { missing: taken.missing };
}

/** Journals and reports a stale lock broken on a machine (apply's and recovery's `onBroken`). */
export function brokenReporter(state: StateStore, deployment: string, emit: (e: ApplyEvent) => void): (machine: string) => (b: BrokenLock) => void {
  return (machine) => (b) => {
    state.journal(deployment, entry.lockBroken(machine, b, b.why));
    emit({ kind: 'lock-broken', machine, holder: b, why: b.why });
  };
}

/**
 * Renews the leases of the locks a transition holds every lease/3, so that no one breaks them
 * while it runs (its steps and its undo alike), however long. Each machine is renewed on its own:
 * one that does not answer (frozen, cut off) holds up only its own renewal, never the others',
 * and a renewal gives up after a lease (it is tried again at the next tick). One whose lock was
 * taken over is reported through `onLost` and no longer renewed.
 */
export function startRenewal(runtimes: () => readonly MachineRuntime[], lock: LockSpec, onLost: (machine: string, error: StrataError) => void): () => void {
  const inFlight = new Set<string>();
  const lost = new Set<string>();
  const renew = (rt: MachineRuntime) => {
    if (lost.has(rt.machine) || inFlight.has(rt.machine)) return;
    inFlight.add(rt.machine);
    void rt
      .renew(lock.owner, lock.token, lock.leaseMs, { timeoutMs: Math.max(1000, lock.leaseMs) })
      .catch((e: unknown) => {
        if (e instanceof StrataError && e.code === 'LOCK_LOST') {
          lost.add(rt.machine);
          onLost(rt.machine, e);
        }
      })
      .finally(() => inFlight.delete(rt.machine));
  };
  const timer = setInterval(() => runtimes().forEach(renew), Math.max(250, Math.floor(lock.leaseMs / 3)));
  timer.unref();
  return () => clearInterval(timer);
}
