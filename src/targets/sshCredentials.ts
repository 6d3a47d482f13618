import { appendFileSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TargetError } from '../errors.ts';
import { readRegularFile, shownPath } from '../lib/regularFile.ts';
import { allowedFile, expandHome, refusedFileMessage } from './credentials.ts';
import { keyBlob, knownHostKeys, knownHostsName, pinnedHostKeys, type HostKeySource } from './hostKeys.ts';
import type { SshTargetOptions } from './sshOptions.ts';

/**
 * Which credentials an SSH connection uses: the private key and the host keys the machine may
 * present, each from the model, the deployment's policy under the controller, or the process's
 * environment (docs/security.md, "Keys").
 */

/** A private key file is a few KiB; a file far larger is not one. */
const MAX_IDENTITY_BYTES = 1024 * 1024;

/** The known_hosts file this machine is checked against, and why that one. */
export function knownHostsFile(o: SshTargetOptions): { file: string; origin: KnownHostsOrigin } {
  if (o.knownHosts !== undefined) return { file: realPath(modelFile(o, 'ssh.knownHosts', o.knownHosts)), origin: 'ssh.knownHosts' };
  if (o.credentials?.knownHosts !== undefined) return { file: realPath(expandHome(o.credentials.knownHosts)), origin: 'deployments[].ssh.knownHosts' };
  if (o.env?.knownHosts) return { file: realPath(expandHome(o.env.knownHosts)), origin: 'STRATA_KNOWN_HOSTS' };
  return { file: realPath(expandHome('~/.ssh/known_hosts')), origin: 'default' };
}

/** The keys the machine may present, and where they came from (named when a key is refused). */
export function expectedHostKeys(o: SshTargetOptions): { keys: string[]; source: HostKeySource } {
  if (o.hostKey) return { keys: [keyBlob(o.hostKey)!], source: { kind: 'hostKey' } };
  // A missing file knows no keys; one that is not a regular file is an error that names it.
  const known = (file: string) => knownHostKeys(file, o.host, o.port);
  const kh = knownHostsFile(o);
  const keys = known(kh.file);
  if (keys.length === 0 && o.trustOnFirstUseFile) {
    // The pinned keys are state: a damaged file is STATE_CORRUPT, never "no key known yet".
    return { keys: pinnedHostKeys(o.trustOnFirstUseFile, o.host, o.port), source: { kind: 'trustOnFirstUse', file: realPath(o.trustOnFirstUseFile) } };
  }
  if (keys.length === 0) {
    throw new TargetError(
      'HOST_KEY_UNKNOWN',
      `no host key is known for ${o.machine} (${o.host}:${o.port}) in ${kh.file}: set ssh.hostKey or ssh.knownHosts in the network model (or ssh.trustOnFirstUse: true to pin the key it presents first)`,
      { machine: o.machine },
    );
  }
  return { keys, source: { kind: 'knownHosts', ...kh } };
}

/**
 * A file a model names, as the policy lets this machine use it; under the controller a file
 * outside the deployment's allowedFiles is refused before anything looks at it.
 */
function modelFile(o: SshTargetOptions, field: 'ssh.identity' | 'ssh.knownHosts', path: string): string {
  const policy = o.credentials;
  if (!policy) return expandHome(path);
  const allowed = allowedFile(path, policy.allowedFiles);
  if (allowed === undefined) throw new TargetError('CREDENTIAL_NOT_ALLOWED', `machine ${o.machine}: ${refusedFileMessage(field, policy)}`, { machine: o.machine, field });
  return allowed;
}

export function privateKeyOf(o: SshTargetOptions): Buffer | string {
  if (o.privateKey !== undefined) return o.privateKey;
  const own = o.credentials?.identity;
  if (o.identity === undefined && own) return own();
  const fromEnv = o.env?.keyFile;
  // modelFile expands ~ itself (and checks the policy first).
  const file = o.identity !== undefined ? modelFile(o, 'ssh.identity', o.identity) : fromEnv === undefined ? undefined : expandHome(fromEnv);
  if (file) {
    // The path may come from a model: only a regular file of key size is read (never a FIFO or /dev/zero).
    const read = readRegularFile(file, MAX_IDENTITY_BYTES);
    if ('refused' in read) throw new TargetError('IDENTITY_UNREADABLE', `cannot read the SSH identity file ${shownPath(file)} for ${o.machine}: it ${read.why}`, { machine: o.machine, reason: read.why });
    return read.bytes;
  }
  const inline = o.env?.key;
  if (inline) return inline;
  throw new TargetError('NO_IDENTITY', `no SSH key for ${o.machine}: set ssh.identity, STRATA_SSH_KEY_FILE or STRATA_SSH_KEY`, { machine: o.machine });
}

type KnownHostsOrigin = 'ssh.knownHosts' | 'deployments[].ssh.knownHosts' | 'STRATA_KNOWN_HOSTS' | 'default';

/** A file's real, absolute path (symlinks resolved) for messages, or its absolute path when it does not exist yet. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Records a host key seen on first use, in known_hosts format, so the next connection must match it. */
export function pinFirstKey(file: string, host: string, port: number, key: Buffer): void {
  const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString();
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${knownHostsName(host, port)} ${type} ${key.toString('base64')}\n`, { mode: 0o600 });
}
