import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StateError } from '../errors.ts';
import { writeFileAtomic } from './atomicFile.ts';
import { checkShape, corrupt, parseStateJson, readStateText } from './readState.ts';
import { snapshotMetaSchema } from './schemas.ts';

/** Snapshots kept per service when neither the root file's `snapshotsKept` nor the caller says. */
export const DEFAULT_SNAPSHOTS_KEPT = 5;

/** The sidecar (`NAME.json`) written next to each snapshot (`NAME.snap`). */
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
    return join(this.stateDir, 'snapshots', deployment, service);
  }

  /** Stores a snapshot and its sidecar; returns where. */
  save(meta: Omit<SnapshotMeta, 'format' | 'createdAt' | 'sha256' | 'size'>, bytes: Buffer, now = new Date()): StoredSnapshot & { meta: SnapshotMeta } {
    const dir = this.serviceDir(meta.deployment, meta.service);
    const stamp = now.toISOString().replace(/[-:]/g, '');
    let base = `${stamp}-gen${meta.generation}-${meta.machine}`;
    for (let i = 2; existsSync(join(dir, `${base}.snap`)); i++) base = `${stamp}-gen${meta.generation}-${meta.machine}-${i}`;
    const full: SnapshotMeta = { format: 'strata-snapshot/1', ...meta, createdAt: now.toISOString(), sha256: sha256(bytes), size: bytes.byteLength };
    const file = join(dir, `${base}.snap`);
    writeFileAtomic(file, bytes);
    writeFileAtomic(sidecarOf(file), `${JSON.stringify(full, null, 2)}\n`);
    return { file, meta: full };
  }

  /** A service's snapshots, newest first. */
  list(deployment: string, service: string): StoredSnapshot[] {
    const dir = this.serviceDir(deployment, service);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      throw corrupt(dir, `cannot be listed (${code ?? (e as Error).message})`);
    }
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

  /** A snapshot's bytes, checked against its sidecar's hash and size when it has one. */
  read(file: string): { bytes: Buffer; meta?: SnapshotMeta } {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new StateError('SNAPSHOT_NOT_FOUND', `cannot read the snapshot ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
    }
    const meta = readMeta(file);
    if (meta && (meta.size !== bytes.byteLength || meta.sha256 !== sha256(bytes))) {
      throw new StateError('SNAPSHOT_CORRUPT', `the snapshot ${file} does not match its sidecar (sha256 ${sha256(bytes).slice(0, 12)}, recorded ${meta.sha256.slice(0, 12)}); refusing to restore it`, { file });
    }
    return { bytes, ...(meta ? { meta } : {}) };
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

export function sidecarOf(file: string): string {
  return file.replace(/\.snap$/, '') + '.json';
}

/** A snapshot's sidecar; undefined when it has none; STATE_CORRUPT when it is damaged. */
function readMeta(file: string): SnapshotMeta | undefined {
  const side = sidecarOf(file);
  let text: string;
  try {
    text = readStateText(side);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return checkShape(side, parseStateJson(side, text), snapshotMetaSchema) as SnapshotMeta;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
