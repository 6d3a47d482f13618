import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tree, TreeEntry, TreeEntryKind } from './tree.ts';

/** The controller's own disk as a tree; paths are used as given (absolute in practice). */
export class FsTree implements Tree {
  readonly label = 'local files';

  async readFile(path: string): Promise<Buffer | undefined> {
    if ((await this.kind(path)) !== 'file') return undefined;
    return readFile(path);
  }

  async list(path: string): Promise<TreeEntry[] | undefined> {
    if ((await this.kind(path)) !== 'dir') return undefined;
    const names = (await readdir(path)).sort();
    return Promise.all(
      names.map(async (name) => {
        const st = await lstat(join(path, name));
        return { name, kind: kindOf(st), mode: st.mode & 0o777 };
      }),
    );
  }

  async kind(path: string): Promise<TreeEntryKind | undefined> {
    try {
      return kindOf(await lstat(path));
    } catch {
      return undefined;
    }
  }
}

function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): TreeEntryKind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
}

export const fsTree = new FsTree();
