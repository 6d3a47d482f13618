import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { TestnetError } from '../errors.ts';
import { SSH_KEYGEN } from './layout.ts';

/** `ssh-ed25519 AAAA... comment` -> `ssh-ed25519 AAAA...`. */
export function publicKeyLine(text: string): string {
  const [type, blob] = text.trim().split(/\s+/);
  if (!type || !blob) throw new TestnetError('TESTNET_KEYGEN_FAILED', `not an OpenSSH public key: ${JSON.stringify(text.slice(0, 80))}`);
  return `${type} ${blob}`;
}

/**
 * Generates an unencrypted ed25519 key pair at `file` (private, 0600) and `file.pub`;
 * returns the public key line without comment.
 */
export async function generateEd25519Key(file: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    execFile(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) {
        reject(new TestnetError('TESTNET_KEYGEN_FAILED', `ssh-keygen failed for ${file}: ${String(stderr).trim() || err.message}`, { file }, { cause: err }));
      } else resolve();
    });
  });
  return publicKeyLine(await readFile(`${file}.pub`, 'utf8'));
}
