import * as fs from 'node:fs';
import { posix } from 'node:path';
import git from 'isomorphic-git';
import type { Tree, TreeEntry, TreeEntryKind } from '../tree/tree.ts';
import { GitError } from './errors.ts';

/** A tree object's entries as isomorphic-git reads them. */
type RawEntry = { mode: string; path: string; oid: string; type: 'blob' | 'tree' | 'commit' };

export interface GitTreeOptions {
  /** The repository's git directory (`.git`, or a bare repository). */
  gitdir: string;
  /** Full sha of the commit to read. */
  commit: string;
  /** Shown in errors and records, e.g. `org/repo@1a2b3c4`. */
  label: string;
  /** isomorphic-git's object cache (pack indexes); share one per repository. */
  cache?: object;
  /** Tree objects by oid; may be shared between trees of one repository (trees are immutable). */
  trees?: Map<string, RawEntry[]>;
}

/**
 * One commit of a Git repository as a Tree. Paths are repository-relative and "/"-separated:
 * `strata.yaml`, `services/server/server.js`; `''`, `.` and `/` are the root, `./x` is `x`,
 * and a path that leaves the repository (`../x`) does not exist. Symlinks are never followed
 * here: a symlink is a blob of mode 120000 holding its target, which `readLink` returns, and
 * src/tree/realPath.ts resolves inside the repository. Git records only 100644 and 100755
 * for files, so a file's mode is 644 or 755 whatever it was in the working tree.
 */
export class GitTree implements Tree {
  readonly label: string;
  readonly rootedAt = 'repository' as const;
  readonly commit: string;
  private readonly gitdir: string;
  private readonly cache: object;
  private readonly trees: Map<string, RawEntry[]>;
  private rootOid?: Promise<string>;

  constructor(opts: GitTreeOptions) {
    this.gitdir = opts.gitdir;
    this.commit = opts.commit;
    this.label = opts.label;
    this.cache = opts.cache ?? {};
    this.trees = opts.trees ?? new Map();
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const e = await this.entry(path);
    if (!e || e.type !== 'blob' || kindOfMode(e.mode) !== 'file') return undefined;
    const { blob } = await this.wrap(() => git.readBlob({ fs, gitdir: this.gitdir, oid: e.oid, cache: this.cache }), path);
    return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  }

  async list(path: string): Promise<TreeEntry[] | undefined> {
    const e = await this.entry(path);
    if (!e || e.type !== 'tree') return undefined;
    const entries = await this.readTreeObject(e.oid, path);
    return entries
      .map((x) => ({ name: x.path, kind: kindOfMode(x.mode), mode: permissionsOfMode(x.mode) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async kind(path: string): Promise<TreeEntryKind | undefined> {
    const e = await this.entry(path);
    return e ? kindOfMode(e.mode) : undefined;
  }

  async readLink(path: string): Promise<string | undefined> {
    const e = await this.entry(path);
    if (!e || e.type !== 'blob' || kindOfMode(e.mode) !== 'symlink') return undefined;
    const { blob } = await this.wrap(() => git.readBlob({ fs, gitdir: this.gitdir, oid: e.oid, cache: this.cache }), path);
    return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString('utf8');
  }

  /** The entry at path (the root is a synthetic tree entry), or undefined. */
  private async entry(path: string): Promise<Pick<RawEntry, 'mode' | 'oid' | 'type'> | undefined> {
    const segments = splitPath(path);
    if (segments === undefined) return undefined;
    let current: Pick<RawEntry, 'mode' | 'oid' | 'type'> = { mode: '040000', oid: await this.root(), type: 'tree' };
    for (const name of segments) {
      if (current.type !== 'tree') return undefined;
      const entries = await this.readTreeObject(current.oid, path);
      const next = entries.find((x) => x.path === name);
      if (!next) return undefined;
      current = next;
    }
    return current;
  }

  private root(): Promise<string> {
    this.rootOid ??= this.wrap(async () => (await git.readCommit({ fs, gitdir: this.gitdir, oid: this.commit, cache: this.cache })).commit.tree, '');
    return this.rootOid;
  }

  private async readTreeObject(oid: string, path: string): Promise<RawEntry[]> {
    let entries = this.trees.get(oid);
    if (!entries) {
      entries = (await this.wrap(() => git.readTree({ fs, gitdir: this.gitdir, oid, cache: this.cache }), path)).tree as RawEntry[];
      this.trees.set(oid, entries);
    }
    return entries;
  }

  private async wrap<T>(f: () => Promise<T>, path: string): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const what = (e as { code?: string }).code === 'NotFoundError' ? 'an object is missing' : (e as Error).message;
      throw new GitError('GIT_OBJECT_MISSING', `cannot read ${path || 'the root'} in ${this.label}: ${what}`, { tree: this.label, path }, { cause: e });
    }
  }
}

/** Path segments below the root, or undefined for a path that leaves the repository. */
function splitPath(path: string): string[] | undefined {
  const p = posix.normalize(path.replace(/^\/+/, '') || '.');
  if (p === '..' || p.startsWith('../')) return undefined;
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

/** Git's entry modes: 100755 / 100644 files, 120000 symlinks, 040000 trees, 160000 submodules. */
export function kindOfMode(mode: string): TreeEntryKind {
  switch (mode) {
    case '100644':
    case '100755':
    case '100664':
      return 'file';
    case '040000':
    case '40000':
      return 'dir';
    case '120000':
      return 'symlink';
    default:
      return 'other';
  }
}

export function permissionsOfMode(mode: string): number {
  switch (kindOfMode(mode)) {
    case 'file':
      return mode === '100755' ? 0o755 : 0o644;
    case 'dir':
      return 0o755;
    case 'symlink':
      return 0o777;
    default:
      return 0;
  }
}
