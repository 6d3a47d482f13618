import { posix } from 'node:path';
import type { YamlSource } from './yamlSource.ts';

/** One model file as parsed: where its values came from, and the values. */
export interface ParsedFile {
  source: YamlSource;
  value: any;
}

/**
 * Whether path lies in dir. Relative paths (inside a Git tree) are anchored at a fixed root
 * rather than the process's working directory, so `..` cannot climb out unnoticed.
 */
export function isInside(dir: string, path: string): boolean {
  const anchor = (p: string) => (posix.isAbsolute(p) ? p : posix.join('/repository', p));
  const rel = posix.relative(anchor(dir), anchor(path));
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !posix.isAbsolute(rel));
}

export function describeDir(dir: string): string {
  return dir === '.' ? '(the repository root)' : dir;
}
