import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StateError } from '../errors.ts';
import { isName } from '../model/names.ts';
import { fsyncDir, writeFileAtomic } from '../lib/atomicFile.ts';
import { sha256 } from '../lib/hash.ts';
import { processAlive } from '../lib/proc.ts';
import { listStateDir } from './readState.ts';
import { readRegularFile, regularFile, shownPath, type ReadRefusal } from '../lib/regularFile.ts';
import { pathName } from './stateNames.ts';

/** Snapshots kept per service when neither the root file's `snapshotsKept` nor the caller says. */
export const DEFAULT_SNAPSHOTS_KEPT = 5;

/** The largest snapshot strata restores: it is held in memory and sent in one stream. */
export const MAX_SNAPSHOT_BYTES = 2 * 1024 ** 3;
/** A sidecar is a few hundred bytes of JSON; anything much larger is not one. */
const MAX_SIDECAR_BYTES = 64 * 1024;

/**
 * The sidecar (`NAME.json`) written next to each snapshot (`NAME.snap`). A snapshot is restored
 * only when its size and sha256 are the ones recorded here: it guards against damage (a
 * truncated copy, the wrong file), not against someone who can write both files.
 */
export interface SnapshotMeta {
  format: 'strata-snapshot/1';
  deployment: string;
  service: string;
  /** The machine it was taken on, and the item's key there. */
  machine: string;
  item: string;
  /** The activation module that made it: its bytes are `pg_dump --format=custom` for `postgresql-database`, a STATE_DIR stream otherwise. */
  module: string;
  /** The generation being applied when it was taken (the recorded one for `strata snapshot`). */
  generation: number;
  createdAt: string;
  /** Why: a transition moved or removed the service, or someone ran `strata snapshot`. */
  reason: 'move' | 'remove' | 'manual';
  sha256: string;
  size: number;
}

export interface StoredSnapshot {
  /** Absolute path of the `.snap` file. */
  file: string;
  /** Undefined for a `.snap` file without a sidecar, or with a damaged one (`damaged` says how). */
  meta?: SnapshotMeta;
  /** Why its sidecar cannot be used (STATE_CORRUPT's message); such a snapshot is never restored. */
  damaged?: string;
}

/**
 * Snapshots of stateful services in the controller's state directory:
 * `snapshots/DEPLOYMENT/SERVICE/TIME-genN-MACHINE.snap` (TIME is ISO 8601 in its basic form,
 * `20260102T030405.678Z`, so names sort by time) with a JSON sidecar beside each. Files are
 * written atomically, readable by the owner only.
 */
export class SnapshotStore {
  constructor(readonly stateDir: string) {}

  serviceDir(deployment: string, service: string): string {
    return join(this.stateDir, 'snapshots', pathName('deployment', deployment), pathName('service', service));
  }

  /**
   * A new file in the service's directory to receive a snapshot into as it arrives (not a
   * `.snap`, so never listed); `save` then moves it into place.
   */
  stagingFile(deployment: string, service: string): string {
    const dir = this.serviceDir(deployment, service);
    mkdirSync(dir, { recursive: true });
    removeAbandonedStaging(dir);
    return join(dir, `.incoming-${process.pid}-${randomBytes(6).toString('hex')}.part`);
  }

  /** Stores a snapshot (its bytes, or a staged file of known size and sha256, which is moved) and its sidecar; returns where. */
  save(meta: Omit<SnapshotMeta, 'format' | 'createdAt' | 'sha256' | 'size'>, bytes: Buffer | StagedSnapshot, now = new Date()): StoredSnapshot & { meta: SnapshotMeta } {
    const dir = this.serviceDir(meta.deployment, meta.service);
    pathName('machine', meta.machine);
    const stamp = now.toISOString().replace(/[-:]/g, '');
    let base = `${stamp}-gen${meta.generation}-${meta.machine}`;
    for (let i = 2; existsSync(join(dir, `${base}.snap`)); i++) base = `${stamp}-gen${meta.generation}-${meta.machine}-${i}`;
    const staged = Buffer.isBuffer(bytes) ? undefined : bytes;
    const sum = staged ? { sha256: staged.sha256, size: staged.size } : { sha256: sha256(bytes as Buffer), size: (bytes as Buffer).byteLength };
    const full: SnapshotMeta = { format: 'strata-snapshot/1', ...meta, createdAt: now.toISOString(), ...sum };
    const file = join(dir, `${base}.snap`);
    if (staged) moveFileDurably(staged.path, file);
    else writeFileAtomic(file, bytes as Buffer);
    writeFileAtomic(sidecarOf(file), `${JSON.stringify(full, null, 2)}\n`);
    return { file, meta: full };
  }

  /** A service's snapshots, newest first. */
  list(deployment: string, service: string): StoredSnapshot[] {
    const dir = this.serviceDir(deployment, service);
    const names = listStateDir(dir);
    return names
      .filter((f) => f.endsWith('.snap'))
      .sort()
      .reverse()
      .map((f): StoredSnapshot => {
        const file = join(dir, f);
        try {
          const meta = readMeta(file);
          return meta ? { file, meta } : { file };
        } catch (e) {
          return { file, damaged: (e as Error).message };
        }
      });
  }

  /** The newest snapshot of a service (taken on `machine`, when given). */
  latest(deployment: string, service: string, machine?: string): StoredSnapshot | undefined {
    return this.list(deployment, service).find((s) => !s.damaged && (machine === undefined || s.meta?.machine === machine));
  }

  /**
   * A snapshot's bytes, read only when they are what its sidecar records: the `.snap` must be a
   * regular file (not a FIFO, device, socket, directory, or a symlink to one) of at most
   * MAX_SNAPSHOT_BYTES, and its sidecar must exist and record exactly its size and sha256. The
   * size is compared before the bytes are read, so a truncated or foreign file is refused
   * without reading it. Every refusal is a StateError that says why (exit 2).
   */
  read(file: string): { bytes: Buffer; meta: SnapshotMeta } {
    const shown = shownPath(file);
    const kind = regularFile(file, MAX_SNAPSHOT_BYTES);
    if ('refused' in kind) throw refusal(file, kind);
    const meta = readSidecar(file);
    if (kind.stats.size !== meta.size) {
      throw new StateError(
        'SNAPSHOT_CORRUPT',
        `the snapshot ${shown} is ${kind.stats.size} bytes but its sidecar ${shownPath(sidecarOf(file))} records ${meta.size}: it was ${kind.stats.size < meta.size ? 'truncated' : 'appended to'} or is not the file the sidecar describes; refusing to restore it`,
        { file },
      );
    }
    const read = readRegularFile(file, meta.size);
    if ('refused' in read) throw refusal(file, read);
    const { bytes } = read;
    const hash = sha256(bytes);
    if (hash !== meta.sha256) {
      throw new StateError('SNAPSHOT_CORRUPT', `the snapshot ${shown} does not match its sidecar ${shownPath(sidecarOf(file))} (sha256 ${hash.slice(0, 12)}, recorded ${meta.sha256.slice(0, 12)}); refusing to restore it`, { file });
    }
    return { bytes, meta };
  }

  /** Removes all but the newest `kept` snapshots of a service, never one in `protect`; returns the removed files. */
  prune(deployment: string, service: string, kept: number, protect: ReadonlySet<string> = new Set()): string[] {
    const removed: string[] = [];
    for (const s of this.list(deployment, service).slice(Math.max(1, kept))) {
      if (protect.has(s.file)) continue;
      rmSync(s.file, { force: true });
      rmSync(sidecarOf(s.file), { force: true });
      removed.push(s.file);
    }
    return removed;
  }
}

/** A snapshot received into a staging file (SnapshotStore.stagingFile): its path, size and sha256. */
export interface StagedSnapshot {
  path: string;
  size: number;
  sha256: string;
}

/** Removes the staging files of processes that are gone (a controller killed while a snapshot arrived). */
function removeAbandonedStaging(dir: string): void {
  for (const f of readdirSync(dir)) {
    const m = /^\.incoming-(\d+)-[0-9a-f]+\.part$/.exec(f);
    if (m && !processAlive(Number(m[1]))) rmSync(join(dir, f), { force: true });
  }
}

/** Makes a written file durable and renames it into place (the same directory). */
function moveFileDurably(from: string, to: string): void {
  const fd = openSync(from, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(from, to);
  fsyncDir(dirname(to));
}

export function sidecarOf(file: string): string {
  return file.replace(/\.snap$/, '') + '.json';
}

/**
 * The sidecar's metadata for listings: undefined when there is none; a damaged or invalid one
 * throws (the listing marks that snapshot `damaged`, and it is never restored).
 */
function readMeta(file: string): SnapshotMeta | undefined {
  try {
    return readSidecar(file);
  } catch (e) {
    if (e instanceof StateError && e.code === 'SNAPSHOT_SIDECAR_MISSING') return undefined;
    throw e;
  }
}

/** A snapshot's sidecar, read with a size bound and checked field by field; a StateError says what is wrong. */
export function readSidecar(file: string): SnapshotMeta {
  const side = sidecarOf(file);
  const shown = shownPath(side);
  const read = readRegularFile(side, MAX_SIDECAR_BYTES);
  if ('refused' in read) {
    const code = read.refused === 'missing' ? 'SNAPSHOT_SIDECAR_MISSING' : 'SNAPSHOT_SIDECAR_INVALID';
    throw new StateError(code, `the sidecar ${shown} of the snapshot ${shownPath(file)} ${read.why}; a snapshot is restored only when its size and sha256 match its sidecar`, { file, sidecar: side });
  }
  let value: unknown;
  try {
    value = JSON.parse(read.bytes.toString('utf8'));
  } catch (e) {
    throw new StateError('SNAPSHOT_SIDECAR_INVALID', `the sidecar ${shown} is not valid JSON (${(e as Error).message})`, { file, sidecar: side });
  }
  const problem = sidecarProblem(value);
  if (problem) throw new StateError('SNAPSHOT_SIDECAR_INVALID', `the sidecar ${shown} is not a strata-snapshot/1 sidecar: ${problem}`, { file, sidecar: side });
  return value as SnapshotMeta;
}

/** What is wrong with a parsed sidecar, field by field; undefined when nothing is. */
function sidecarProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'expected a JSON object';
  const o = v as Record<string, unknown>;
  if (o.format !== 'strata-snapshot/1') return 'format: expected "strata-snapshot/1"';
  for (const k of ['deployment', 'service', 'machine'] as const) if (!isName(o[k])) return `${k}: expected a name`;
  for (const k of ['item', 'module', 'createdAt'] as const) if (typeof o[k] !== 'string') return `${k}: expected a string`;
  if (!Number.isSafeInteger(o.size) || (o.size as number) < 0) return 'size: expected a whole number of bytes';
  if ((o.size as number) > MAX_SNAPSHOT_BYTES) return `size: ${o.size} bytes is over the limit of ${MAX_SNAPSHOT_BYTES}`;
  if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) return 'sha256: expected 64 lowercase hex digits';
  if (!Number.isSafeInteger(o.generation)) return 'generation: expected a whole number';
  return undefined;
}

function refusal(file: string, r: ReadRefusal): StateError {
  const code = { missing: 'SNAPSHOT_NOT_FOUND', 'not-a-file': 'SNAPSHOT_NOT_A_FILE', 'too-large': 'SNAPSHOT_TOO_LARGE', changed: 'SNAPSHOT_CHANGED', unreadable: 'SNAPSHOT_UNREADABLE' }[r.refused];
  return new StateError(code, `the snapshot ${shownPath(file)} ${r.why}; refusing to restore it`, { file });
}
