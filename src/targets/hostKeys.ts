import { createHash, createHmac } from 'node:crypto';
import { TargetError } from '../errors.ts';
import { corrupt } from '../state/readState.ts';
import { readRegularFile, shownPath } from '../lib/regularFile.ts';

/** The base64 key blob of a public key line ("ssh-ed25519 AAAA… comment"). */
export function keyBlob(line: string): string | undefined {
  return line.trim().split(/\s+/)[1];
}

/** The host patterns a known_hosts file uses for host:port ("[host]:port" unless port 22). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** A known_hosts file far larger than any fleet's is not one (and is not read into memory). */
const MAX_KNOWN_HOSTS_BYTES = 16 * 1024 * 1024;

/**
 * Every key blob a known_hosts file lists for host:port, plain and hashed entries alike; none
 * when the file does not exist. The file is read only if it is a regular file of bounded size
 * (the path may come from a model): a FIFO or a device throws KNOWN_HOSTS_UNREADABLE at once.
 */
export function knownHostKeys(file: string, host: string, port: number): string[] {
  const read = readRegularFile(file, MAX_KNOWN_HOSTS_BYTES);
  if ('refused' in read) {
    if (read.refused === 'missing') return [];
    throw new TargetError('KNOWN_HOSTS_UNREADABLE', `the known_hosts file ${shownPath(file)} ${read.why}`, { file });
  }
  return keysListed(read.bytes.toString('utf8'), host, port);
}

/** The key blobs a known_hosts text lists for host:port. */
function keysListed(text: string, host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const out: string[] = [];
  for (const raw of text.split('\n')) {
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
  const read = readRegularFile(file, MAX_KNOWN_HOSTS_BYTES);
  if ('refused' in read) {
    if (read.refused === 'missing') return [];
    throw corrupt(file, read.why);
  }
  const text = read.bytes.toString('utf8');
  const lines = text.split('\n');
  if (lines.pop() !== '') throw corrupt(file, `line ${lines.length + 1} has no newline (cut short)`);
  lines.forEach((line, i) => {
    if (!/^\S+ [A-Za-z0-9@.-]+ [A-Za-z0-9+/]+=*$/.test(line)) throw corrupt(file, `line ${i + 1} is not "HOST TYPE KEY"`);
  });
  return keysListed(text, host, port);
}

/** Where the key a machine must present came from; a refusal names it, so the fix is clear. */
export type HostKeySource =
  | { kind: 'hostKey' }
  | { kind: 'knownHosts'; file: string; origin: 'ssh.knownHosts' | 'deployments[].ssh.knownHosts' | 'STRATA_KNOWN_HOSTS' | 'default' }
  | { kind: 'trustOnFirstUse'; file: string };

/** OpenSSH's fingerprint of a key blob: `SHA256:` and the unpadded base64 of its sha256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** A word for the shell, single-quoted when it needs to be. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+,=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The message of a refused host key: which machine, what it presented, which pin it did not
 * match (the model's ssh.hostKey, a known_hosts file and why that one, or the state directory's
 * known_hosts written by trust on first use), and how to accept a key that changed on purpose.
 */
export function hostKeyMismatchMessage(o: { machine: string; host: string; port: number; presented: Buffer; source: HostKeySource }): string {
  const name = knownHostsName(o.host, o.port);
  const seen = `host key of ${o.machine} (${o.host}:${o.port}), ${fingerprint(o.presented)}, does not match`;
  const s = o.source;
  if (s.kind === 'hostKey') {
    return (
      `${seen} ssh.hostKey of machine ${o.machine} in the network model; refusing to connect. ` +
      `If the machine's key changed on purpose, check the new key out of band and put it in ssh.hostKey.`
    );
  }
  const remove = `ssh-keygen -R ${shellWord(name)} -f ${shellWord(s.file)}`;
  if (s.kind === 'trustOnFirstUse') {
    return (
      `${seen} the key pinned for ${name} by trust on first use in ${s.file}; refusing to connect. ` +
      `If the machine's key changed on purpose, remove its line from that file (${remove}) and run again: the next connection pins the key it presents.`
    );
  }
  const why =
    s.origin === 'ssh.knownHosts'
      ? `ssh.knownHosts of machine ${o.machine}`
      : s.origin === 'deployments[].ssh.knownHosts'
        ? "the deployment's ssh.knownHosts in the controller configuration"
        : s.origin === 'STRATA_KNOWN_HOSTS'
          ? '$STRATA_KNOWN_HOSTS'
          : 'the default known_hosts';
  return (
    `${seen} the known_hosts entry for ${name} in ${s.file} (${why}); refusing to connect. ` +
    `If the machine's key changed on purpose, replace that entry (${remove}, then add the new key, checked out of band).`
  );
}
