import { readFile } from 'node:fs/promises';
import type { SecretRef } from '../lib/secretRef.ts';
import { GitError } from './errors.ts';

/**
 * Reads a secret at the moment it is needed (so a rotated file or variable is picked up):
 * a file's content, or an environment variable's value, with surrounding whitespace trimmed.
 * Errors name the file or variable, never the value.
 */
export async function readSecret(ref: SecretRef, what: string, repo: string): Promise<string> {
  if (ref.file !== undefined) {
    let text: string;
    try {
      text = await readFile(ref.file, 'utf8');
    } catch (e) {
      throw new GitError('GIT_SECRET_MISSING', `cannot read ${what} for ${repo} from ${ref.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { url: repo, file: ref.file });
    }
    const value = text.trim();
    if (value === '') throw new GitError('GIT_SECRET_MISSING', `${what} for ${repo}: ${ref.file} is empty`, { url: repo, file: ref.file });
    return value;
  }
  const name = ref.env!;
  const value = process.env[name]?.trim();
  if (!value) throw new GitError('GIT_SECRET_MISSING', `${what} for ${repo}: environment variable ${name} is not set`, { url: repo, env: name });
  return value;
}
