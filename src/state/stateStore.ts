import type { RecordedState } from '../manifest/recorded.ts';
import type { BeginEntry, JournalEntry } from './journal.ts';
import type { GenerationRecord } from './records.ts';

/**
 * The controller's recorded state of its deployments: generations, the current one, the journal
 * of the transition in flight, its identity and per-deployment notes. The file backend
 * (src/state/fileState.ts) implements it; apply and recovery receive a store, never make one
 * (the CLI and the controller construct it, src/api/context.ts). Every write is durable before
 * it returns.
 */
export interface StateStore {
  /** The state directory: snapshots and local machines' roots live under it. */
  readonly dir: string;
  current(deployment: string): RecordedState | undefined;
  /** The number of the deployed generation; undefined when nothing was ever recorded. */
  currentGeneration(deployment: string): number | undefined;
  /** GENERATION_NOT_FOUND when it is not recorded. */
  generation(deployment: string, n: number): GenerationRecord;
  /** The recorded generation numbers, ascending. */
  generations(deployment: string): number[];
  /** The highest generation number ever used for the deployment (0: none). */
  highestGeneration(deployment: string): number;
  /** The number the next generation gets: above every number ever used. */
  nextGeneration(deployment: string): number;
  /** Records a generation and makes it current; a number used before is GENERATION_REUSED. */
  record(deployment: string, rec: GenerationRecord): void;
  /** Records a generation rebuilt from the machines (`strata adopt`), keeping its number. */
  adopt(deployment: string, rec: GenerationRecord, replace: boolean): void;
  /** Moves damaged state aside (`strata adopt --force`); returns what was moved. */
  setAsideDamaged(deployment: string, only?: 'transition.lock'): string[];
  /** Starts a transition's journal; TRANSITION_PENDING when one is there already. */
  beginJournal(deployment: string, entry: BeginEntry): void;
  /** Appends an entry to the journal of the transition in flight. */
  journal(deployment: string, entry: JournalEntry): void;
  /** The journal's entries (a torn last line left out); damage is STATE_CORRUPT. */
  readJournal(deployment: string): JournalEntry[];
  hasJournal(deployment: string): boolean;
  clearJournal(deployment: string): void;
  /** This controller's identity, HOST:ID, stable across restarts. */
  identity(): string;
  /** One transition per deployment at a time; returns the release function. */
  lockDeployment(deployment: string): () => void;
  readControllerNotes<T>(deployment: string): T | undefined;
  writeControllerNotes(deployment: string, notes: unknown): void;
}
