import { lstatSync } from 'node:fs';

/** Whether `path` itself is a symbolic link (false when it does not exist or cannot be read). */
export function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
