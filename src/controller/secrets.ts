import { readFileSync } from 'node:fs';
import { StrataError } from '../errors.ts';
import type { SecretRef } from '../lib/secretRef.ts';

/** Reads a secret from its file or environment variable; errors name where, never the value. */
export function readSecret(ref: SecretRef, what: string): string {
  if (ref.env !== undefined) {
    const v = process.env[ref.env];
    if (!v) throw new StrataError('SECRET_MISSING', `${what}: environment variable ${ref.env} is not set`, { env: ref.env });
    return v.trim();
  }
  try {
    return readFileSync(ref.file!, 'utf8').trim();
  } catch (e) {
    throw new StrataError('SECRET_MISSING', `${what}: cannot read ${ref.file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file: ref.file });
  }
}
