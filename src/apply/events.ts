import type { Step, StepPhase } from '../plan/types.ts';
import type { BrokenLock, LockHolder } from '../targets/machineAnswers.ts';

/** What apply reports as it goes; the CLI prints them, the controller will log them. */
export type ApplyEvent =
  | { kind: 'lock'; machines: string[] }
  | { kind: 'upload'; machine: string; artifacts: number; bytes: number }
  | { kind: 'phase'; phase: StepPhase; steps: number }
  | { kind: 'step'; status: 'start' | 'done'; step: Step; ms?: number }
  | { kind: 'step'; status: 'failed'; step: Step; error: string }
  | { kind: 'snapshot'; step: Step; file: string; bytes: number }
  | { kind: 'restore'; step: Step; file: string; bytes: number }
  | { kind: 'rollback'; steps: number }
  | { kind: 'rollback-step'; step: Step; ok: boolean; error?: string }
  | { kind: 'commit'; generation: number; machines: number }
  | { kind: 'lock-broken'; machine: string; holder: LockHolder; why: 'expired' | 'dead-owner' }
  | { kind: 'lock-lost'; machine: string; error: string }
  | { kind: 'recovery'; result: RecoveryResult }
  | { kind: 'unlock'; machines: string[] };

export type RecoveryAction = 'none' | 'completed' | 'rolled-back' | 'cleaned-up';

export interface RecoveryResult {
  /**
   * `none`: no transition was interrupted; `completed`: every machine had recorded the new
   * generation, so it was recorded in the state store too; `rolled-back`: what it had done was
   * undone; `cleaned-up`: it had finished, only its locks were released.
   */
  action: RecoveryAction;
  deployment: string;
  generation?: number;
  /** Steps undone by this recovery. */
  undone: number;
  /** Steps the interrupted transition had started. */
  started: number;
  machines: string[];
  message: string;
}

/** How a `lock-broken` event reads in the CLI's output and the controller's log. */
export function describeBroken(machine: string, b: BrokenLock): string {
  const why = b.why === 'expired' ? `its lease expired ${Math.max(0, b.now - b.expiresAt)}s ago` : `its holder (pid ${b.pid ?? '?'}) is no longer running`;
  return `broke the lock of ${b.owner} on ${machine} (pid ${b.pid ?? '?'}, taken ${new Date(b.takenAt * 1000).toISOString()}): ${why}`;
}
