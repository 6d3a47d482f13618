/**
 * A read-only file tree that models and artifacts are read from: the disk for the CLI, a Git
 * commit for the controller. Paths are "/"-separated; what they are relative to is the tree's
 * own business (absolute on disk, repository-relative in Git).
 */
export interface Tree {
  /** Says where the tree is, for errors and records: a directory, or "repo@sha". */
  readonly label: string;
  /** The file's bytes, or undefined when there is no regular file at path. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** The entries of a directory, sorted by name, or undefined when path is not a directory. */
  list(path: string): Promise<TreeEntry[] | undefined>;
  /** What is at path, without following symlinks. */
  kind(path: string): Promise<TreeEntryKind | undefined>;
}

export type TreeEntryKind = 'file' | 'dir' | 'symlink' | 'other';

export interface TreeEntry {
  name: string;
  kind: TreeEntryKind;
  /** Permission bits (e.g. 0o755); Git trees know only 644 and 755. */
  mode: number;
}
