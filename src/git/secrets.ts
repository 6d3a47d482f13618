import { readFileSync } from 'node:fs';
import type { SecretRef } from '../lib/secretRef.ts';
import { StrataError } from '../errors.ts';

/** A secret that cannot be read, or is empty. The message names the file or variable, never a value. */
export class SecretError extends StrataError {}

/**
 * The one reader of secrets (Git credentials, the controller's SSH keys, API token and webhook
 * secrets), read at the moment they are needed so a rotated file or variable is picked up. The
 * rule: the file when the reference names one, else the environment variable; the value with
 * surrounding whitespace trimmed; an unreadable file, an unset variable, or a value that is empty
 * (or only whitespace) is refused with SECRET_MISSING. `what` says what the secret is for.
 */
export function readSecret(ref: SecretRef, what: string): string {
  const where = ref.file !== undefined ? { file: ref.file } : { env: ref.env! };
  let text: string | undefined;
  if (where.file !== undefined) {
    try {
      text = readFileSync(where.file, 'utf8');
    } catch (e) {
      throw new SecretError('SECRET_MISSING', `${what}: cannot read ${where.file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, where);
    }
  } else {
    text = process.env[where.env];
    if (text === undefined) throw new SecretError('SECRET_MISSING', `${what}: environment variable ${where.env} is not set`, where);
  }
  const value = text.trim();
  if (value === '') throw new SecretError('SECRET_MISSING', `${what}: ${where.file ?? `environment variable ${where.env}`} is empty`, where);
  return value;
}
