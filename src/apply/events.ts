import type { Step, StepPhase } from '../plan/types.ts';

/** What apply reports as it goes; the CLI prints them, the controller will log them. */
export type ApplyEvent =
  | { kind: 'lock'; machines: string[] }
  | { kind: 'upload'; machine: string; artifacts: number; bytes: number }
  | { kind: 'phase'; phase: StepPhase; steps: number }
  | { kind: 'step'; status: 'start' | 'done'; step: Step; ms?: number }
  | { kind: 'step'; status: 'failed'; step: Step; error: string }
  | { kind: 'rollback'; steps: number }
  | { kind: 'rollback-step'; step: Step; ok: boolean; error?: string }
  | { kind: 'commit'; generation: number; machines: number }
  | { kind: 'unlock'; machines: string[] };
