export type RecoveryAction = 'none' | 'completed' | 'rolled-back' | 'cleaned-up';

/** What recovering an interrupted transition did (src/apply/recover.ts). */
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
