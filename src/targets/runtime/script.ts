import { readFileSync } from 'node:fs';
import { sha256 } from '../../lib/hash.ts';

/** The target runtime's source and its content address; uploaded once per version. */
export const RUNTIME_SCRIPT = readFileSync(new URL('./runtime.sh', import.meta.url));
export const RUNTIME_HASH = sha256(RUNTIME_SCRIPT).slice(0, 20);

export function runtimePath(root: string): string {
  return `${root}/runtime/${RUNTIME_HASH}.sh`;
}
