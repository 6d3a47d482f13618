import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * The git directory of a repository on this machine, or undefined when dir is none: `dir/.git`
 * (a directory, or a file saying `gitdir: PATH` as worktrees and submodules have), or dir
 * itself when it is a bare repository (HEAD, objects/ and refs/ inside).
 */
export function findGitdir(dir: string): string | undefined {
  const dotgit = join(dir, '.git');
  try {
    const st = statSync(dotgit);
    if (st.isDirectory()) return dotgit;
    if (st.isFile()) {
      const m = /^gitdir:\s*(.+?)\s*$/m.exec(readFileSync(dotgit, 'utf8'));
      if (m?.[1]) return isAbsolute(m[1]) ? m[1] : resolve(dir, m[1]);
    }
  } catch {
    // no .git: maybe bare
  }
  if (existsSync(join(dir, 'HEAD')) && existsSync(join(dir, 'objects')) && existsSync(join(dir, 'refs'))) return dir;
  return undefined;
}
