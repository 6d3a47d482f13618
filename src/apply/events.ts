import type { Step, StepPhase } from '../plan/types.ts';
import type { BrokenLock, LockHolder } from '../targets/runtimeApi.ts';
import type { RecoveryResult } from './recoveryResult.ts';

/** What apply reports as it goes; the CLI prints them, the controller will log them. */
export type ApplyEvent =
  | { kind: 'lock'; machines: string[] }
  | { kind: 'upload'; machine: string; artifacts: number; bytes: number }
  | { kind: 'phase'; phase: StepPhase; steps: number }
  | { kind: 'step'; status: 'start' | 'done'; step: Step; ms?: number }
  | { kind: 'step'; status: 'failed'; step: Step; error: string }
  | { kind: 'snapshot'; step: Step; file: string; bytes: number }
  | { kind: 'restore'; step: Step; file: string; bytes: number }
  /** The undo of a failed or interrupted transition (src/apply/undo.ts). */
  | { kind: 'undo'; steps: number }
  | { kind: 'undo-step'; step: Step; ok: boolean; error?: string }
  | { kind: 'commit'; generation: number; machines: number }
  | { kind: 'lock-broken'; machine: string; holder: LockHolder; why: 'expired' | 'dead-owner' }
  | { kind: 'lock-lost'; machine: string; error: string }
  | { kind: 'recovery'; result: RecoveryResult }
  | { kind: 'unlock'; machines: string[] };

/** How a `lock-broken` event reads in the CLI's output and the controller's log. */
export function describeBroken(machine: string, b: BrokenLock): string {
  const why = b.why === 'expired' ? `its lease expired ${Math.max(0, b.now - b.expiresAt)}s ago` : `its holder (pid ${b.pid ?? '?'}) is no longer running`;
  return `broke the lock of ${b.owner} on ${machine} (pid ${b.pid ?? '?'}, taken ${new Date(b.takenAt * 1000).toISOString()}): ${why}`;
}
