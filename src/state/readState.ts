import { readdirSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import { StateError } from '../errors.ts';

/**
 * The one way a state file is read: anything unreadable (a directory, no permission), not
 * UTF-8 JSON (truncated, garbage) or of the wrong shape is STATE_CORRUPT naming the file and
 * what is wrong with it. Never a SyntaxError: the caller must not mistake damage for absence.
 */
export function readStateJson<T>(file: string, schema: z.ZodType<T>): T {
  return checkShape(file, parseStateJson(file, readStateText(file)), schema);
}

/** A state file's text; STATE_CORRUPT when it exists but cannot be read. ENOENT is passed on. */
export function readStateText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw e;
    throw corrupt(file, `cannot be read (${code ?? (e as Error).message})`);
  }
  const text = bytes.toString('utf8');
  if (Buffer.compare(Buffer.from(text, 'utf8'), bytes) !== 0) throw corrupt(file, 'is not UTF-8 text (damaged)');
  return text;
}

export function parseStateJson(file: string, text: string, where = ''): unknown {
  if (text.trim() === '') throw corrupt(file, `${where}is empty (truncated)`);
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message.replace(/\s+/g, ' ');
    throw corrupt(file, `${where}is not valid JSON (truncated or damaged): ${why}`);
  }
}

/**
 * The value as it was read, once it has the schema's shape. Not the schema's copy: that would
 * silently drop keys it cannot hold (such as a `__proto__` key JSON.parse keeps as data), and a
 * state file is never read as less than it records. The schemas transform nothing.
 */
export function checkShape<T>(file: string, value: unknown, schema: z.ZodType<T>, where = ''): T {
  const r = schema.safeParse(value);
  if (r.success) return value as T;
  const issue = r.error.issues[0]!;
  const field = issue.path.length ? issue.path.map(String).join('.') : '(the whole file)';
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem${r.error.issues.length === 2 ? '' : 's'})` : '';
  throw corrupt(file, `${where}has the wrong shape: ${field}: ${issue.message}${more}`);
}

export function corrupt(file: string, what: string, data: Record<string, unknown> = {}): StateError {
  return new StateError('STATE_CORRUPT', `the state file ${file} ${what}; strata will not guess what it recorded (restore it from a backup, or rebuild the deployment's state from its machines with strata adopt --force, which sets damaged files aside)`, { file, ...data });
}

/** The names in a state directory; none when it does not exist, STATE_CORRUPT when it cannot be listed. */
export function listStateDir(dir: string, data: Record<string, unknown> = {}): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw corrupt(dir, `cannot be listed (${code ?? (e as Error).message})`, data);
  }
}
