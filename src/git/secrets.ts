import type { SecretRef } from '../lib/secretRef.ts';
import { StrataError } from '../errors.ts';
import { readRegularFile, shownPath } from '../lib/regularFile.ts';

/** A key, a token or a password is a few KiB at most; a file far larger is not a secret. */
const MAX_SECRET_BYTES = 1024 * 1024;

/** A secret that cannot be read, or is empty. The message names the file or variable, never a value. */
export class SecretError extends StrataError {}

/**
 * The one reader of secrets (Git credentials, the controller's SSH keys, API token and webhook
 * secrets), read at the moment they are needed so a rotated file or variable is picked up. The
 * rule: the file when the reference names one, else the environment variable; the value with
 * surrounding whitespace trimmed; an unreadable file (or one that is not a regular file, or is
 * over 1 MiB: a FIFO or /dev/zero named here never hangs or fills memory), an unset variable, or
 * a value that is empty (or only whitespace) is refused with SECRET_MISSING. `what` says what
 * the secret is for.
 */
export function readSecret(ref: SecretRef, what: string): string {
  const where = ref.file !== undefined ? { file: ref.file } : { env: ref.env! };
  let text: string | undefined;
  if (where.file !== undefined) {
    const read = readRegularFile(where.file, MAX_SECRET_BYTES);
    if ('refused' in read) throw new SecretError('SECRET_MISSING', `${what}: cannot read ${shownPath(where.file)}: it ${read.why}`, where);
    text = read.bytes.toString('utf8');
  } else {
    text = process.env[where.env];
    if (text === undefined) throw new SecretError('SECRET_MISSING', `${what}: environment variable ${where.env} is not set`, where);
  }
  const value = text.trim();
  if (value === '') throw new SecretError('SECRET_MISSING', `${what}: ${where.file ?? `environment variable ${where.env}`} is empty`, where);
  return value;
}
