import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

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
