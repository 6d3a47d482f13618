import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../errors.ts';
import type { Manifest } from '../manifest/types.ts';
import type { RecordedState } from '../plan/diff.ts';
import { writeFileAtomic } from './atomicFile.ts';

export interface GenerationRecord {
  generation: number;
  createdAt: string;
  manifest: Manifest;
  /** Set when this generation was made by `strata rollback`. */
  rolledBackTo?: number;
  /** Where the models came from: a file path, or the repository. */
  source?: string;
  /** The Git commit the models were read from, when they came from Git. */
  commit?: { sha: string; author: { name: string; email: string }; message: string; time: string };
}

export interface JournalEntry {
  at: string;
  event: string;
  [k: string]: unknown;
}

/**
 * The controller's recorded state, one directory per deployment under the state directory:
 * `generations/N.json`, `current` (the number of the deployed generation) and `journal.jsonl`
 * (the transition in flight). Every write is atomic.
 */
export class FileStateStore {
  constructor(readonly dir: string) {}

  private deploymentDir(deployment: string): string {
    return join(this.dir, 'deployments', deployment);
  }

  current(deployment: string): RecordedState | undefined {
    const n = this.currentGeneration(deployment);
    if (n === undefined) return undefined;
    return { generation: n, manifest: this.generation(deployment, n).manifest };
  }

  currentGeneration(deployment: string): number | undefined {
    const file = join(this.deploymentDir(deployment), 'current');
    if (!existsSync(file)) return undefined;
    const n = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(n) || n < 1) throw new StateError('STATE_CORRUPT', `${file} does not hold a generation number`, { file });
    return n;
  }

  generation(deployment: string, n: number): GenerationRecord {
    const file = join(this.deploymentDir(deployment), 'generations', `${n}.json`);
    if (!existsSync(file)) throw new StateError('GENERATION_NOT_FOUND', `deployment ${deployment} has no generation ${n}`, { deployment, generation: n });
    return JSON.parse(readFileSync(file, 'utf8')) as GenerationRecord;
  }

  generations(deployment: string): number[] {
    const dir = join(this.deploymentDir(deployment), 'generations');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .map((f) => /^(\d+)\.json$/.exec(f)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Records a generation and makes it current; the generation file is written first. */
  record(deployment: string, rec: GenerationRecord): void {
    const dir = this.deploymentDir(deployment);
    writeFileAtomic(join(dir, 'generations', `${rec.generation}.json`), JSON.stringify(rec));
    writeFileAtomic(join(dir, 'current'), `${rec.generation}\n`);
  }

  /** Appends to the journal of the transition in flight (write-ahead: before each effect). */
  journal(deployment: string, entry: Omit<JournalEntry, 'at'>): void {
    const dir = this.deploymentDir(deployment);
    mkdirSync(dir, { recursive: true });
    appendFileSync(join(dir, 'journal.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
  }

  readJournal(deployment: string): JournalEntry[] {
    const file = join(this.deploymentDir(deployment), 'journal.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as JournalEntry);
  }

  /** The controller's own notes on a deployment (last failure, …), kept across restarts. */
  readControllerNotes<T>(deployment: string): T | undefined {
    const file = join(this.deploymentDir(deployment), 'controller.json');
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
  }

  writeControllerNotes(deployment: string, notes: unknown): void {
    writeFileAtomic(join(this.deploymentDir(deployment), 'controller.json'), JSON.stringify(notes));
  }

  clearJournal(deployment: string): void {
    rmSync(join(this.deploymentDir(deployment), 'journal.jsonl'), { force: true });
  }
}
