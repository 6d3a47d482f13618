import { posix } from 'node:path';

/**
 * Whether path lies in dir. Relative paths (inside a Git tree) are anchored at a fixed root
 * rather than the process's working directory, so `..` cannot climb out unnoticed. Whole
 * path components only: /a/bc is not inside /a/b. Pure.
 */
export function isInside(dir: string, path: string): boolean {
  const anchor = (p: string) => (posix.isAbsolute(p) ? p : posix.join('/repository', p));
  const rel = posix.relative(anchor(dir), anchor(path));
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !posix.isAbsolute(rel));
}
