import { constants, existsSync } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import type { Tree, TreeEntry, TreeEntryKind } from './tree.ts';
import { TreeChangedError, TreeReadError } from './tree.ts';

/** Errors that mean "nothing of that kind is there", as opposed to "there but unreadable". */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'ENXIO']);

/** Linux names every open descriptor's real path here; elsewhere we compare inode numbers. */
const PROC_FD = existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined;

/**
 * The controller's own disk as a tree; paths are absolute. Opening never follows a symlink
 * (O_NOFOLLOW), never blocks on a FIFO (O_NONBLOCK), and checks that what was opened is what
 * is at the path named: its real path (Linux, /proc/self/fd) or its device and inode. So a
 * path that holds a symlink in any component, or is swapped after the caller resolved it,
 * is never read. Directory entries are listed through the opened directory itself.
 */
export class FsTree implements Tree {
  readonly label = 'local files';
  readonly rootedAt = 'filesystem' as const;

  async readFile(path: string): Promise<Buffer | undefined> {
    const fh = await openChecked(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK, this.label);
    if (!fh) return undefined;
    try {
      if (!(await fh.stat()).isFile()) return undefined;
      return await fh.readFile().catch((e: unknown) => {
        throw new TreeReadError(path, this.label, e);
      });
    } finally {
      await fh.close();
    }
  }

  async list(path: string): Promise<TreeEntry[] | undefined> {
    const fh = await openChecked(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_DIRECTORY, this.label);
    if (!fh) return undefined;
    try {
      // Through the descriptor: the directory read is the one checked, whatever happens to `path`.
      const dir = PROC_FD ? `${PROC_FD}/${fh.fd}` : path;
      const names = (
        await readdir(dir).catch((e: unknown) => {
          throw new TreeReadError(path, this.label, e);
        })
      ).sort();
      const out: TreeEntry[] = [];
      for (const name of names) {
        // An entry removed since readdir is simply not listed; one that cannot be looked at
        // (a directory readable but not searchable) is an error, never silently left out.
        const st = await lstat(`${dir}/${name}`).catch((e: unknown) => {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw new TreeReadError(`${path}/${name}`, this.label, e);
        });
        if (st) out.push({ name, kind: kindOf(st), mode: st.mode & 0o7777 });
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async kind(path: string): Promise<TreeEntryKind | undefined> {
    try {
      return kindOf(await lstat(path));
    } catch (e) {
      if (ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw new TreeReadError(path, this.label, e);
    }
  }

  async readLink(path: string): Promise<string | undefined> {
    try {
      return await readlink(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (ABSENT.has(code) || code === 'EINVAL') return undefined;
      throw new TreeReadError(path, this.label, e);
    }
  }
}

/**
 * Opens path, or undefined when nothing openable is there (missing, a symlink, not a
 * directory when one is asked for). Throws TreeChangedError when the file opened is not the
 * one at path: a parent directory that is (or became) a symlink.
 */
async function openChecked(path: string, flags: number, label: string): Promise<FileHandle | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, flags);
  } catch (e) {
    if (ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw new TreeReadError(path, label, e);
  }
  try {
    if (!(await isAt(fh, path))) throw new TreeChangedError(path, label);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

async function isAt(fh: FileHandle, path: string): Promise<boolean> {
  if (PROC_FD) return (await readlink(`${PROC_FD}/${fh.fd}`).catch(() => undefined)) === path;
  const [a, b] = await Promise.all([fh.stat(), lstat(path).catch(() => undefined)]);
  return b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): TreeEntryKind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
}

export const fsTree = new FsTree();
