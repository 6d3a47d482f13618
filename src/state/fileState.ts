import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StateError, StrataError } from '../errors.ts';
import type { Manifest } from '../manifest/types.ts';
import type { RecordedState } from '../plan/diff.ts';
import type { PendingRestore } from '../plan/types.ts';
import { fsyncDir, writeFileAtomic } from './atomicFile.ts';
import { processAlive, processStartTime } from './process.ts';
import { pathName } from './stateNames.ts';

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
  /** Set when this generation was made by `strata abandon-machine`: the audit record. */
  abandoned?: AbandonRecord;
  /** Stateful data lost with an abandoned machine, restored when a plan places its service again. */
  pendingRestores?: PendingRestore[];
}

/** Who gave up on a machine, when and why, and what left the recorded state with it. */
export interface AbandonRecord {
  machine: string;
  by: string;
  at: string;
  reason: string;
  /** Keys of the items recorded on the machine, which this generation no longer has. */
  items: string[];
  /** The generation it was taken out of. */
  from: number;
}

export interface JournalEntry {
  at: string;
  event: string;
  [k: string]: unknown;
}

/** Who holds a deployment's transition on this state directory (`deployments/NAME/transition.lock`). */
export interface DeploymentLockHolder {
  pid: number;
  /** The pid's start time (clock ticks since boot), so a recycled pid is not taken for the holder. */
  startTime?: string;
  host: string;
  at: string;
}

/**
 * The controller's recorded state, one directory per deployment under the state directory:
 * `generations/N.json`, `current` (the number of the deployed generation) and `journal.jsonl`
 * (the transition in flight). Every write is atomic.
 */
export class FileStateStore {
  constructor(readonly dir: string) {}

  private deploymentDir(deployment: string): string {
    return join(this.dir, 'deployments', pathName('deployment', deployment));
  }

  current(deployment: string): RecordedState | undefined {
    const n = this.currentGeneration(deployment);
    if (n === undefined) return undefined;
    const rec = this.generation(deployment, n);
    return { generation: n, manifest: rec.manifest, ...(rec.pendingRestores?.length ? { pendingRestores: rec.pendingRestores } : {}) };
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

  /**
   * Starts the journal of a transition with its `begin` entry. The file is created exclusively:
   * an unfinished transition's journal is never appended to (recover it first).
   */
  beginJournal(deployment: string, entry: Omit<JournalEntry, 'at' | 'event'>): void {
    const dir = this.deploymentDir(deployment);
    mkdirSync(dir, { recursive: true });
    let fd: number;
    try {
      fd = openSync(join(dir, 'journal.jsonl'), 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      throw new StateError('TRANSITION_PENDING', `deployment ${deployment} has an unfinished transition in ${join(dir, 'journal.jsonl')}; it must be recovered first`, { deployment });
    }
    try {
      writeSync(fd, `${JSON.stringify({ at: new Date().toISOString(), event: 'begin', ...entry })}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fsyncDir(dir);
  }

  /**
   * Appends to the journal of the transition in flight (write-ahead: before each effect). The
   * entry is on disk (fsync) before this returns.
   */
  journal(deployment: string, entry: Omit<JournalEntry, 'at'>): void {
    const dir = this.deploymentDir(deployment);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'journal.jsonl');
    const created = !existsSync(file);
    const fd = openSync(file, 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created) fsyncDir(dir);
  }

  /** The journal's entries; a torn last line (a crash while it was written) is left out. */
  readJournal(deployment: string): JournalEntry[] {
    const file = join(this.deploymentDir(deployment), 'journal.jsonl');
    if (!existsSync(file)) return [];
    const out: JournalEntry[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as JournalEntry);
      } catch {
        // Only a line being written when the process died can be torn; it was never acted on.
      }
    }
    return out;
  }

  hasJournal(deployment: string): boolean {
    return existsSync(join(this.deploymentDir(deployment), 'journal.jsonl'));
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
    const id = readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{6,64}$/.test(id)) throw new StateError('STATE_CORRUPT', `${file} does not hold a controller id`, { file });
    return `${safeHostname()}:${id}`;
  }

  /**
   * Takes the deployment's transition lock on this state directory: one transition (or
   * recovery) per deployment at a time among the processes sharing it. A lock left by a dead
   * process is taken over. Returns the release function. Held by a live process: MACHINE_LOCKED.
   */
  lockDeployment(deployment: string): () => void {
    const dir = this.deploymentDir(deployment);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'transition.lock');
    const me: DeploymentLockHolder = { pid: process.pid, startTime: processStartTime(process.pid), host: hostname(), at: new Date().toISOString() };
    const text = `${JSON.stringify(me)}\n`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      writeFileAtomic(tmp, text);
      try {
        linkSync(tmp, file); // atomic: fails when the lock exists
        fsyncDir(dir);
        return () => {
          try {
            if (readFileSync(file, 'utf8') === text) unlinkSync(file);
            fsyncDir(dir);
          } catch {
            // already gone
          }
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
      let heldText: string;
      try {
        heldText = readFileSync(file, 'utf8');
      } catch {
        continue; // released in the meantime
      }
      let held: DeploymentLockHolder | undefined;
      try {
        held = JSON.parse(heldText) as DeploymentLockHolder;
      } catch {
        held = undefined;
      }
      if (held && holderAlive(held)) {
        throw new StrataError(
          'MACHINE_LOCKED',
          `deployment ${deployment} is locked: a transition by process ${held.pid} on ${held.host} (since ${held.at}) is in flight on its machines`,
          { deployment, holder: held },
        );
      }
      // The holder is dead: move its lock aside (atomically) and try again. Should someone else
      // have replaced it in the meantime, theirs is put back.
      const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        renameSync(file, aside);
      } catch {
        continue;
      }
      if (readFileSync(aside, 'utf8') !== heldText) {
        try {
          linkSync(aside, file);
        } catch {
          // a third process holds it now; ours is lost either way
        }
      }
      unlinkSync(aside);
    }
    throw new StrataError('MACHINE_LOCKED', `deployment ${deployment} is locked: cannot take ${file}`, { deployment });
  }

  /** The controller's own notes on a deployment (last failure, …), kept across restarts. */
  readControllerNotes<T>(deployment: string): T | undefined {
    const file = join(this.deploymentDir(deployment), 'controller.json');
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
  }

  writeControllerNotes(deployment: string, notes: unknown): void {
    writeFileAtomic(join(this.deploymentDir(deployment), 'controller.json'), JSON.stringify(notes));
  }

  /** Removes a finished transition's journal (and makes the removal durable). */
  clearJournal(deployment: string): void {
    const dir = this.deploymentDir(deployment);
    rmSync(join(dir, 'journal.jsonl'), { force: true });
    if (existsSync(dir)) fsyncDir(dir);
  }
}

/** A hostname as a lock-owner token may hold it. */
function safeHostname(): string {
  return hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost';
}

/** Whether the holder of a transition lock still runs; one on another host is taken as gone (one controller per state directory). */
function holderAlive(h: DeploymentLockHolder): boolean {
  if (h.host !== hostname()) return false;
  // Our own pid: this very process, unless the pid was recycled from an earlier incarnation (a container restart).
  if (h.pid === process.pid) return h.startTime === undefined || h.startTime === processStartTime(process.pid);
  if (!processAlive(h.pid)) return false;
  return h.startTime === undefined || processStartTime(h.pid) === undefined || processStartTime(h.pid) === h.startTime;
}
