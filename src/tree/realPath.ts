import { posix } from 'node:path';
import { StrataError } from '../errors.ts';
import { printable } from './printable.ts';
import type { Tree, TreeEntryKind } from './tree.ts';

/** Why a path named by a model cannot be read; each becomes a model issue where it was named. */
export type PathRefusal = 'outside' | 'missing' | 'not-a-directory' | 'loop';

export class PathRefusedError extends StrataError {
  readonly reason: PathRefusal;
  constructor(reason: PathRefusal, message: string, path: string) {
    super(`PATH_${reason.toUpperCase().replace(/-/g, '_')}`, message, { path, reason });
    this.reason = reason;
  }
}

/** Linux's limit on symlinks followed while resolving one path (ELOOP). */
const MAX_LINKS = 40;

/** One path component still to resolve, and the symlink whose target it came from. */
type Step = { name: string; via?: string };

/**
 * The deployment directory of a tree, for resolving what its models name. Every symlink on
 * the way to a named path is followed by this code (never by the OS), and the resolution is
 * refused as soon as it reaches anything outside the directory: `hostdir/.ssh` with
 * `hostdir -> /root`, `linkdir/`, a chain of links that leaves and comes back, an absolute
 * link target. The directory itself is taken as it really is (its own real path).
 */
export class DeploymentDir {
  private realSegs?: Promise<string[]>;

  constructor(
    readonly tree: Tree,
    /** The directory as named (the root file's directory): absolute on disk, repository-relative in Git. */
    readonly dir: string,
  ) {}

  /**
   * The real path of `path` (lexically inside the directory, as the model loader made it)
   * and what is there. Throws PathRefusedError; `path` as named appears in its message.
   */
  async resolve(path: string): Promise<{ path: string; kind: TreeEntryKind }> {
    const rel = this.relative(path);
    const shown = rel.length ? rel.join('/') : '.';
    if (rel.some((s) => s === '..')) throw new PathRefusedError('outside', `"${shown}" is outside the deployment directory ${this.shownDir()}`, path);
    const base = await this.base();
    const r = await this.walk(base, rel, base, shown);
    if (path.endsWith('/') && r.kind !== 'dir') throw new PathRefusedError('not-a-directory', `"${shown}/" is not a directory`, path);
    return { path: this.toPath(r.segs), kind: r.kind };
  }

  private base(): Promise<string[]> {
    this.realSegs ??= (async () => {
      const r = await this.walk([], segmentsOf(this.absolute(this.dir)), undefined, this.dir);
      if (r.kind !== 'dir') throw new PathRefusedError('not-a-directory', `the deployment directory ${this.dir} is not a directory`, this.dir);
      return r.segs;
    })();
    return this.realSegs;
  }

  /** `path`'s segments below the directory, lexically; a leading `..` means it is outside. */
  private relative(path: string): string[] {
    const anchor = (p: string) => (this.tree.rootedAt === 'filesystem' ? posix.resolve(p) : posix.join('/repository', p));
    const rel = posix.relative(anchor(this.dir), anchor(path));
    return rel === '' ? [] : rel.split('/');
  }

  /** The directory as messages name it (a Git tree's root has no name of its own). */
  private shownDir(): string {
    return this.tree.rootedAt === 'repository' && posix.normalize(this.dir || '.') === '.' ? '(the repository root)' : printable(this.dir);
  }

  private absolute(p: string): string {
    return this.tree.rootedAt === 'filesystem' ? posix.resolve(p) : p;
  }

  private toPath(segs: readonly string[]): string {
    return this.tree.rootedAt === 'filesystem' ? `/${segs.join('/')}` : segs.join('/');
  }

  /** How a resolved location is shown: relative to the deployment directory when inside it. */
  private show(segs: readonly string[], base: readonly string[] | undefined): string {
    if (base && within(base, segs)) return printable(segs.slice(base.length).join('/') || '.');
    return printable(this.tree.rootedAt === 'filesystem' ? `/${segs.join('/')}` : segs.join('/') || '(the repository root)');
  }

  /**
   * Resolves `rest` from the directory `start`, following symlinks. With `bound`, nothing
   * outside it is even looked up: every component reached, through symlinks too, must lie
   * inside, so a chain that leaves and comes back is refused, and so is an absolute target
   * (it passes through the root) and a `..` above the bound.
   */
  private async walk(start: string[], rest: string[], bound: string[] | undefined, shown: string): Promise<{ segs: string[]; kind: TreeEntryKind }> {
    const outside = (why: string) => new PathRefusedError('outside', `"${shown}" leads outside the deployment directory ${this.shownDir()}: ${why}`, shown);
    let cur = [...start];
    let kind: TreeEntryKind = 'dir';
    const todo: Step[] = rest.map((name) => ({ name })).reverse();
    let links = 0;
    let lastVia: string | undefined;
    while (todo.length > 0) {
      const { name, via } = todo.pop()!;
      lastVia = via;
      if (name === '' || name === '.') continue;
      if (kind !== 'dir') throw new PathRefusedError('not-a-directory', `"${shown}": ${this.show(cur, bound)} is not a directory`, shown);
      if (name === '..') {
        // Never above the bound, not even to step back in: the same on disk and in Git, where
        // the deployment directory may be the repository's root.
        if (bound && cur.length <= bound.length) throw outside(via ? `${via}, which climbs above it` : 'it climbs above it');
        if (cur.length === 0 && this.tree.rootedAt === 'repository') throw outside(via ? `${via}, which climbs above the repository root` : 'it climbs above the repository root');
        cur.pop();
        continue;
      }
      const next = [...cur, name];
      if (bound && !within(bound, next)) throw outside(via ?? `it resolves to ${this.show(next, bound)}`);
      if (bound && isGitDir(name)) throw new PathRefusedError('outside', `"${shown}" leads into ${this.show(next, bound)}, a checkout's own metadata (it may hold credentials), which is no part of the repository`, shown);
      const at = this.toPath(next);
      const k = await this.tree.kind(at);
      if (k === undefined) throw new PathRefusedError('missing', `"${shown}" does not exist (${this.show(next, bound)} is missing in ${this.tree.label})`, shown);
      if (k !== 'symlink') {
        cur = next;
        kind = k;
        continue;
      }
      if (++links > MAX_LINKS) throw new PathRefusedError('loop', `"${shown}": too many levels of symlinks (a loop?) at ${this.show(next, bound)}`, shown);
      const target = await this.tree.readLink(at);
      if (!target) throw new PathRefusedError('missing', `"${shown}": ${this.show(next, bound)} is an empty or unreadable symlink`, shown);
      const link = `${this.show(next, bound)} is a symlink to ${printable(target)}`;
      if (target.startsWith('/')) {
        if (this.tree.rootedAt === 'repository') throw outside(`${link}, an absolute path outside the repository`);
        cur = [];
      }
      for (const s of target.split('/').reverse()) todo.push({ name: s, via: link });
      kind = 'dir';
    }
    if (bound && !within(bound, cur)) throw outside(lastVia ?? `it resolves to ${this.show(cur, bound)}`);
    return { segs: cur, kind };
  }
}

/**
 * `.git` (in any case, as Git itself refuses it on case-insensitive disks): a checkout's
 * metadata, never content of the repository, so never read for a model or shipped.
 */
export function isGitDir(name: string): boolean {
  return name.toLowerCase() === '.git';
}

function segmentsOf(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

function within(bound: readonly string[], segs: readonly string[]): boolean {
  return segs.length >= bound.length && bound.every((s, i) => segs[i] === s);
}
