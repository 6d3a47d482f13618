import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateError } from '../../src/errors.ts';
import type { RecordedState } from '../../src/manifest/recorded.ts';
import { journalLine, parseJournalLine, type BeginEntry, type JournalEntry } from '../../src/state/journal.ts';
import type { GenerationRecord } from '../../src/state/records.ts';
import type { StateStore } from '../../src/state/stateStore.ts';
import { Crash, Life } from './fakeRuntime.ts';

/** What an in-memory state directory holds; outlives the MemoryStateStore (the "process") using it. */
export class MemoryState {
  readonly generations = new Map<string, Map<number, GenerationRecord>>();
  readonly current = new Map<string, number>();
  readonly highest = new Map<string, number>();
  /** Journal lines as written (JSON text), by deployment. */
  readonly journals = new Map<string, string[]>();
  readonly notes = new Map<string, unknown>();
  readonly locked = new Set<string>();
  /** Snapshots are files (src/state/snapshots.ts): they go to a temporary directory. */
  readonly dir = mkdtempSync(join(tmpdir(), 'strata-memory-state-'));
  /** Durable writes so far, over every process. */
  writes = 0;
}

/**
 * An in-memory StateStore (src/state/stateStore.ts) for unit tests. Journal entries go through
 * the journal's own line format and parser (src/state/journal.ts), so what apply writes is
 * checked as the file store checks it. `crashAfter` N: the process (`life`) dies right after its
 * Nth durable write (journal entry, generation record, journal removal), as kill -9 would.
 */
export class MemoryStateStore implements StateStore {
  private written = 0;

  constructor(
    readonly data: MemoryState,
    private readonly life = new Life(),
    private readonly crashAfter = Infinity,
  ) {}

  get dir(): string {
    return this.data.dir;
  }

  current(deployment: string): RecordedState | undefined {
    const n = this.currentGeneration(deployment);
    if (n === undefined) return undefined;
    const rec = this.generation(deployment, n);
    return { generation: n, manifest: rec.manifest, ...(rec.pendingRestores?.length ? { pendingRestores: rec.pendingRestores } : {}) };
  }

  currentGeneration(deployment: string): number | undefined {
    this.life.check();
    return this.data.current.get(deployment);
  }

  generation(deployment: string, n: number): GenerationRecord {
    this.life.check();
    const rec = this.data.generations.get(deployment)?.get(n);
    if (!rec) throw new StateError('GENERATION_NOT_FOUND', `deployment ${deployment} has no generation ${n}`, { deployment, generation: n });
    return rec;
  }

  generations(deployment: string): number[] {
    this.life.check();
    return [...(this.data.generations.get(deployment)?.keys() ?? [])].sort((a, b) => a - b);
  }

  highestGeneration(deployment: string): number {
    return Math.max(0, this.data.highest.get(deployment) ?? 0, ...this.generations(deployment));
  }

  nextGeneration(deployment: string): number {
    return this.highestGeneration(deployment) + 1;
  }

  record(deployment: string, rec: GenerationRecord): void {
    const had = this.data.generations.get(deployment)?.get(rec.generation);
    const reused = had ? had.manifest.hash !== rec.manifest.hash || rec.generation <= (this.currentGeneration(deployment) ?? 0) : rec.generation <= this.highestGeneration(deployment);
    if (reused) throw new StateError('GENERATION_REUSED', `generation ${rec.generation} of ${deployment} was used before`, { deployment, generation: rec.generation });
    this.write(() => {
      if (!this.data.generations.has(deployment)) this.data.generations.set(deployment, new Map());
      this.data.generations.get(deployment)!.set(rec.generation, rec);
      this.data.highest.set(deployment, Math.max(rec.generation, this.data.highest.get(deployment) ?? 0));
      this.data.current.set(deployment, rec.generation);
    });
  }

  adopt(deployment: string, rec: GenerationRecord): void {
    this.write(() => {
      if (!this.data.generations.has(deployment)) this.data.generations.set(deployment, new Map());
      this.data.generations.get(deployment)!.set(rec.generation, rec);
      this.data.current.set(deployment, rec.generation);
    });
  }

  setAsideDamaged(): string[] {
    return [];
  }

  beginJournal(deployment: string, entry: BeginEntry): void {
    this.life.check();
    if (this.data.journals.has(deployment)) throw new StateError('TRANSITION_PENDING', `deployment ${deployment} has an unfinished transition`, { deployment });
    this.write(() => this.data.journals.set(deployment, [journalLine(entry)]));
  }

  journal(deployment: string, entry: JournalEntry): void {
    this.write(() => {
      const lines = this.data.journals.get(deployment) ?? [];
      this.data.journals.set(deployment, [...lines, journalLine(entry)]);
    });
  }

  readJournal(deployment: string): JournalEntry[] {
    this.life.check();
    return (this.data.journals.get(deployment) ?? []).map((line, i) => parseJournalLine(`memory:${deployment}/journal.jsonl`, line.trimEnd(), i + 1));
  }

  hasJournal(deployment: string): boolean {
    this.life.check();
    return this.data.journals.has(deployment);
  }

  clearJournal(deployment: string): void {
    this.write(() => this.data.journals.delete(deployment));
  }

  identity(): string {
    return 'test-host:0123456789ab';
  }

  lockDeployment(deployment: string): () => void {
    this.life.check();
    if (this.data.locked.has(deployment)) throw new StateError('DEPLOYMENT_LOCKED', `deployment ${deployment} is locked`, { deployment });
    this.data.locked.add(deployment);
    return () => this.data.locked.delete(deployment);
  }

  readControllerNotes<T>(deployment: string): T | undefined {
    return this.data.notes.get(deployment) as T | undefined;
  }

  writeControllerNotes(deployment: string, notes: unknown): void {
    this.data.notes.set(deployment, notes);
  }

  /** One durable write; the process dies right after the one it was told to die after. */
  private write(effect: () => void): void {
    this.life.check();
    effect();
    this.data.writes++;
    if (++this.written >= this.crashAfter) {
      this.life.dead = true;
      throw new Crash();
    }
  }
}
