import { StrataError } from '../errors.ts';
import { printable } from './printable.ts';

/**
 * A read-only file tree that models and artifacts are read from: the disk for the CLI, a Git
 * commit for the controller. Paths are "/"-separated; what they are relative to is the tree's
 * own business (absolute on disk, repository-relative in Git).
 *
 * The methods never follow a symlink in the last component of a path. Callers that read what
 * a model names go through src/tree/realPath.ts, which resolves every symlink itself and
 * keeps the result inside the deployment directory; a Tree only reports what is there.
 */
export interface Tree {
  /** Says where the tree is, for errors and records: a directory, or "repo@sha". */
  readonly label: string;
  /**
   * `filesystem`: paths are absolute and an absolute symlink target means the disk's root.
   * `repository`: paths are repository-relative, and nothing outside the repository exists
   * (an absolute symlink target, or `..` above the root, leads out of it).
   */
  readonly rootedAt: 'filesystem' | 'repository';
  /**
   * The bytes of the regular file at path, or undefined when there is none. Disk trees check
   * that the file opened is the one at path (no symlink anywhere in it, nothing swapped in
   * between) and throw TreeChangedError when it is not.
   */
  readFile(path: string): Promise<Buffer | undefined>;
  /** The entries of a directory, sorted by name, or undefined when path is not a directory. */
  list(path: string): Promise<TreeEntry[] | undefined>;
  /** What is at path, without following a symlink there. */
  kind(path: string): Promise<TreeEntryKind | undefined>;
  /** The target of the symlink at path, as written, or undefined when path is no symlink. */
  readLink(path: string): Promise<string | undefined>;
}

export type TreeEntryKind = 'file' | 'dir' | 'symlink' | 'other';

export interface TreeEntry {
  name: string;
  kind: TreeEntryKind;
  /** Permission bits (e.g. 0o600); Git trees know only 644 and 755. */
  mode: number;
}

/** A file or directory was replaced (e.g. by a symlink) between being checked and being read. */
export class TreeChangedError extends StrataError {
  constructor(path: string, label: string) {
    super('SOURCE_CHANGED', `${printable(path)} changed while it was read from ${label} (it is not the file that was checked); nothing was shipped`, { path });
  }
}

/** A file or directory of the tree exists but cannot be read (permissions, an I/O error). */
export class TreeReadError extends StrataError {
  constructor(path: string, label: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'an error';
    super('SOURCE_UNREADABLE', `${printable(path)} cannot be read from ${label} (${code})`, { path, errno: code }, { cause });
  }
}

/** Whether an error is a tree refusing to read something, as opposed to a fault of strata. */
export function isTreeRefusal(e: unknown): e is StrataError {
  return e instanceof StrataError && (e.code === 'SOURCE_CHANGED' || e.code === 'SOURCE_UNREADABLE');
}
