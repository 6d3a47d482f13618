import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { corrupt } from '../state/readState.ts';

/** The base64 key blob of a public key line ("ssh-ed25519 AAAA… comment"). */
export function keyBlob(line: string): string | undefined {
  return line.trim().split(/\s+/)[1];
}

/** The host patterns a known_hosts file uses for host:port ("[host]:port" unless port 22). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Every key blob a known_hosts file lists for host:port, plain and hashed entries alike. */
export function knownHostKeys(file: string, host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const out: string[] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@revoked')) continue;
    const fields = line.replace(/^@cert-authority\s+/, '').split(/\s+/);
    const [hosts, , blob] = fields;
    if (!hosts || !blob) continue;
    if (hosts.split(',').some((h) => hostMatches(h, name))) out.push(blob);
  }
  return out;
}

function hostMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return pattern === name;
}

/**
 * The keys strata pinned on first use (the state directory's `known_hosts`) for host:port. It
 * is state: a line that is not `HOST TYPE BASE64` (torn, damaged) or a file that cannot be read
 * is STATE_CORRUPT, never "no key known", which would trust whatever key answers next.
 */
export function pinnedHostKeys(file: string, host: string, port: number): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw corrupt(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines.pop() !== '') throw corrupt(file, `line ${lines.length + 1} has no newline (cut short)`);
  lines.forEach((line, i) => {
    if (!/^\S+ [A-Za-z0-9@.-]+ [A-Za-z0-9+/]+=*$/.test(line)) throw corrupt(file, `line ${i + 1} is not "HOST TYPE KEY"`);
  });
  return knownHostKeys(file, host, port);
}
