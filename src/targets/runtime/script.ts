import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../../lib/hash.ts';
import { runtimeFile, shHeader } from './protocol.ts';

/**
 * The runtime's files in the order they are joined (docs/runtime.md, "How the script is
 * assembled"): the library, one file per module type, and main.sh last, the only part that
 * runs anything. Paths are relative to this module, never to the working directory.
 */
export const RUNTIME_PARTS = [
  'lib/base.sh',
  'lib/detect.sh',
  'lib/platform.sh',
  'lib/paths.sh',
  'lib/stream.sh',
  'lib/ports.sh',
  'lib/records.sh',
  'lib/deployments.sh',
  'lib/store.sh',
  'lib/lock.sh',
  'lib/lockverbs.sh',
  'lib/generations.sh',
  'lib/statedir.sh',
  'lib/items.sh',
  'modules/process.sh',
  'modules/file.sh',
  'modules/script.sh',
  'modules/directory.sh',
  'modules/postgresql-database.sh',
  'lib/verbs.sh',
  'main.sh',
] as const;

/** The runtime as it is uploaded: its source and its content address. */
export interface RuntimeScript {
  readonly script: Buffer;
  readonly hash: string;
}

/** The absolute path of one of the runtime's files (a URL relative to this module). */
export function runtimePartPath(part: string): string {
  return fileURLToPath(new URL(`./${part}`, import.meta.url));
}

/** Reads and joins the runtime's files: the protocol's sh header, then each part in order. */
export function assembleRuntime(read: (part: string) => Buffer = (part) => readFileSync(runtimePartPath(part))): RuntimeScript {
  const parts = RUNTIME_PARTS.flatMap((p) => [Buffer.from(`\n# ---- ${p}\n`), read(p)]);
  const script = Buffer.concat([Buffer.from(shHeader()), ...parts]);
  return { script, hash: sha256(script).slice(0, 20) };
}

/**
 * The runtime, assembled on first use and kept for the process's life: its files are part of
 * strata's installation and do not change while it runs. (The one cached value of this module:
 * computed behind a function, not read at import time.)
 */
export function runtimeScript(): RuntimeScript {
  cached ??= assembleRuntime();
  return cached;
}
let cached: RuntimeScript | undefined;

export function runtimePath(root: string): string {
  return runtimeFile(root, runtimeScript().hash);
}
