import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StateError } from '../errors.ts';
import type { RecordedState } from '../manifest/recorded.ts';
import { fsyncDir, writeFileAtomic } from '../lib/atomicFile.ts';
import { takeTransitionLock } from './transitionLock.ts';
import { checkShape, corrupt, listStateDir, parseStateJson, readStateJson, readStateText } from './readState.ts';
import type { BeginEntry, JournalEntry } from './journal.ts';
import { JournalFile } from './journalFile.ts';
import type { GenerationRecord } from './records.ts';
import { controllerNotesSchema, deploymentLockSchema, generationRecordSchema } from './schemas.ts';
import type { StateStore } from './stateStore.ts';
import { pathName } from './stateNames.ts';

export type { JournalEntry } from './journal.ts';

/**
 * The controller's recorded state, one directory per deployment under the state directory:
 * `generations/N.json`, `current` (the number of the deployed generation) and `journal.jsonl`
 * (the transition in flight). Every write is atomic.
 */
export class FileStateStore implements StateStore {
  constructor(readonly dir: string) {}

  private deploymentDir(deployment: string): string {
    return join(this.dir, 'deployments', pathName('deployment', deployment));
  }

  current(deployment: string): RecordedState | undefined {
    const n = this.currentGeneration(deployment);
    if (n === undefined) return undefined;
    if (!existsSync(this.generationFile(deployment, n))) {
      throw corrupt(join(this.deploymentDir(deployment), 'current'), `names generation ${n}, but ${this.generationFile(deployment, n)} is missing`, { deployment, generation: n });
    }
    const rec = this.generation(deployment, n);
    return { generation: n, manifest: rec.manifest, ...(rec.pendingRestores?.length ? { pendingRestores: rec.pendingRestores } : {}) };
  }

  /**
   * The number of the deployed generation; undefined when nothing was ever recorded. A missing
   * `current` beside recorded generations (or a high-water mark) is damage, not "nothing
   * deployed": planning from nothing would activate everything again over what runs.
   */
  currentGeneration(deployment: string): number | undefined {
    const file = join(this.deploymentDir(deployment), 'current');
    let text: string;
    try {
      text = readStateText(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const files = this.generations(deployment);
      const mark = this.highWaterMark(deployment);
      if (files.length || mark) {
        const what = files.length ? `generations ${files.join(', ')} are recorded in ${join(this.deploymentDir(deployment), 'generations')}` : `${this.highWaterFile(deployment)} says generation ${mark} was recorded`;
        throw corrupt(file, `is missing, but ${what}; which one runs is unknown`, { deployment });
      }
      return undefined;
    }
    const n = /^\d+\n?$/.test(text) ? Number(text.trim()) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw corrupt(file, `does not hold a generation number (it holds ${JSON.stringify(text.slice(0, 40))})`, { deployment });
    return n;
  }

  private generationFile(deployment: string, n: number): string {
    return join(this.deploymentDir(deployment), 'generations', `${n}.json`);
  }

  generation(deployment: string, n: number): GenerationRecord {
    const file = this.generationFile(deployment, n);
    if (!existsSync(file)) throw new StateError('GENERATION_NOT_FOUND', `deployment ${deployment} has no generation ${n}`, { deployment, generation: n });
    const rec = readStateJson(file, generationRecordSchema) as unknown as GenerationRecord;
    if (rec.generation !== n) throw corrupt(file, `holds generation ${rec.generation}, not ${n}`, { deployment });
    if (rec.manifest.deployment !== deployment) throw corrupt(file, `holds a manifest of deployment ${rec.manifest.deployment}, not ${deployment}`, { deployment });
    return rec;
  }

  generations(deployment: string): number[] {
    const dir = join(this.deploymentDir(deployment), 'generations');
    const names = listStateDir(dir, { deployment });
    return names
      .map((f) => /^(\d+)\.json$/.exec(f)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  private highWaterFile(deployment: string): string {
    return join(this.deploymentDir(deployment), 'highest-generation');
  }

  /** The highest generation number ever recorded (kept apart from generations/, so deleting files there does not lower it). */
  private highWaterMark(deployment: string): number {
    const file = this.highWaterFile(deployment);
    let text: string;
    try {
      text = readStateText(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    if (!/^\d+\n?$/.test(text)) throw corrupt(file, `does not hold a generation number (it holds ${JSON.stringify(text.slice(0, 40))})`, { deployment });
    return Number(text.trim());
  }

  /** The highest generation number this state directory has used for the deployment (0: none). */
  highestGeneration(deployment: string): number {
    const files = this.generations(deployment);
    return Math.max(0, this.highWaterMark(deployment), files[files.length - 1] ?? 0, this.currentGeneration(deployment) ?? 0);
  }

  /** The number the next generation gets: above every number ever used, so none is reused. */
  nextGeneration(deployment: string): number {
    return this.highestGeneration(deployment) + 1;
  }

  /**
   * Records a generation and makes it current: the generation file first, then the high-water
   * mark, then `current`. An existing generations/N.json is never overwritten, and a number at
   * or below one used before is refused (GENERATION_REUSED); the one exception is completing a
   * record that a crash cut short between its file and `current` (same manifest hash).
   */
  record(deployment: string, rec: GenerationRecord): void {
    const dir = this.deploymentDir(deployment);
    const file = this.generationFile(deployment, rec.generation);
    const current = this.currentGeneration(deployment);
    if (existsSync(file)) {
      const had = this.generation(deployment, rec.generation);
      if (had.manifest.hash !== rec.manifest.hash || rec.generation <= (current ?? 0)) {
        throw new StateError('GENERATION_REUSED', `generation ${rec.generation} of ${deployment} is recorded already in ${file}; strata never overwrites a generation`, { deployment, generation: rec.generation, file });
      }
    } else {
      const highest = this.highestGeneration(deployment);
      if (rec.generation <= highest) {
        throw new StateError('GENERATION_REUSED', `generation number ${rec.generation} of ${deployment} was used before (the highest is ${highest}); strata never reuses one`, { deployment, generation: rec.generation });
      }
      writeFileAtomic(file, JSON.stringify(rec));
    }
    if (rec.generation > this.highWaterMark(deployment)) writeFileAtomic(this.highWaterFile(deployment), `${rec.generation}\n`);
    writeFileAtomic(join(dir, 'current'), `${rec.generation}\n`);
  }

  /**
   * Records a deployment's generation rebuilt from its machines (`strata adopt`): like record,
   * but when `replace` is set the deployment's `current`, generations and high-water mark may
   * already exist; the files of other generations are kept, and the number is kept as the
   * machines have it (they hold the truth), with the high-water mark raised to it.
   */
  adopt(deployment: string, rec: GenerationRecord, replace: boolean): void {
    const dir = this.deploymentDir(deployment);
    const file = this.generationFile(deployment, rec.generation);
    if (existsSync(file) && !replace) {
      throw new StateError('GENERATION_REUSED', `generation ${rec.generation} of ${deployment} is recorded already in ${file}`, { deployment, generation: rec.generation, file });
    }
    if (existsSync(file)) renameSync(file, `${file}.replaced-${Date.now()}`);
    writeFileAtomic(file, JSON.stringify(rec));
    let mark = 0;
    try {
      mark = this.highWaterMark(deployment);
    } catch {
      // a damaged mark is replaced below, never lower than a generation file's number
    }
    const highest = Math.max(rec.generation, mark, ...this.generations(deployment));
    if (highest !== mark) writeFileAtomic(this.highWaterFile(deployment), `${highest}\n`);
    writeFileAtomic(join(dir, 'current'), `${rec.generation}\n`);
  }

  /**
   * For `strata adopt --force`: moves every damaged file of the deployment's state aside
   * (`FILE.damaged-TIME`, kept for inspection) — generation files, `current`, the high-water
   * mark, the journal, the controller notes (or `only` the transition lock, which must be taken
   * first) — and returns them. Files that read are left alone.
   */
  setAsideDamaged(deployment: string, only?: 'transition.lock'): string[] {
    const dir = this.deploymentDir(deployment);
    const stamp = new Date().toISOString().replace(/[-:]/g, '');
    const moved: string[] = [];
    const check = (file: string, read: () => unknown) => {
      if (!existsSync(file)) return;
      try {
        read();
      } catch (e) {
        if (!(e instanceof StateError) || e.code !== 'STATE_CORRUPT') throw e;
        renameSync(file, `${file}.damaged-${stamp}`);
        moved.push(file);
      }
    };
    if (only) {
      check(join(dir, only), () => checkShape(join(dir, only), parseStateJson(join(dir, only), readStateText(join(dir, only))), deploymentLockSchema));
      return moved;
    }
    for (const n of this.generations(deployment)) check(this.generationFile(deployment, n), () => this.generation(deployment, n));
    check(this.highWaterFile(deployment), () => this.highWaterMark(deployment));
    check(join(dir, 'journal.jsonl'), () => this.readJournal(deployment));
    check(join(dir, 'controller.json'), () => this.readControllerNotes(deployment));
    const current = join(dir, 'current');
    if (existsSync(current)) {
      try {
        this.current(deployment);
      } catch (e) {
        if (!(e instanceof StateError) || e.code !== 'STATE_CORRUPT') throw e;
        renameSync(current, `${current}.damaged-${stamp}`);
        moved.push(current);
      }
    }
    if (moved.length) fsyncDir(dir);
    return moved;
  }

  private journalFile(deployment: string): JournalFile {
    return new JournalFile(this.deploymentDir(deployment), deployment);
  }

  beginJournal(deployment: string, entry: BeginEntry): void {
    this.journalFile(deployment).begin(entry);
  }

  journal(deployment: string, entry: JournalEntry): void {
    this.journalFile(deployment).append(entry);
  }

  readJournal(deployment: string): JournalEntry[] {
    return this.journalFile(deployment).read();
  }

  hasJournal(deployment: string): boolean {
    return this.journalFile(deployment).exists();
  }

  /**
   * This controller's identity, `HOST:ID`: the ID is made once and kept in the state directory,
   * so a restarted controller (or another CLI run on the same state) recognises its own locks.
   */
  identity(): string {
    const file = join(this.dir, 'identity');
    if (!existsSync(file)) {
      mkdirSync(this.dir, { recursive: true });
      const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      writeFileAtomic(tmp, `${randomBytes(6).toString('hex')}\n`);
      try {
        linkSync(tmp, file); // fails if another process made it first: theirs is kept
        fsyncDir(this.dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
    }
    const id = readStateText(file).trim();
    if (!/^[0-9a-f]{6,64}$/.test(id)) throw corrupt(file, 'does not hold a controller id');
    return `${safeHostname()}:${id}`;
  }

  /**
   * Takes the deployment's transition lock on this state directory: one transition (or
   * recovery) per deployment at a time among the processes sharing it. A lock left by a dead
   * process is taken over. Returns the release function. Held by a live process: STATE_LOCKED.
   */
  lockDeployment(deployment: string): () => void {
    return takeTransitionLock(this.deploymentDir(deployment), deployment);
  }

  /** The controller's own notes on a deployment (last failure, …), kept across restarts. */
  readControllerNotes<T>(deployment: string): T | undefined {
    const file = join(this.deploymentDir(deployment), 'controller.json');
    return existsSync(file) ? (readStateJson(file, controllerNotesSchema) as T) : undefined;
  }

  writeControllerNotes(deployment: string, notes: unknown): void {
    writeFileAtomic(join(this.deploymentDir(deployment), 'controller.json'), JSON.stringify(notes));
  }

  clearJournal(deployment: string): void {
    this.journalFile(deployment).remove();
  }
}

/** A hostname as a lock-owner token may hold it. */
function safeHostname(): string {
  return hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost';
}
