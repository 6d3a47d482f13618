import { execFileSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostKeyMismatchMessage, keyBlob, knownHostKeys, knownHostsName, pinnedHostKeys } from './hostKeys.ts';

const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAIBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'strata-kh-'));
  writeFileSync(join(dir, 'known_hosts'), text);
  return join(dir, 'known_hosts');
}

describe('known_hosts', () => {
  it('finds plain entries, lists of names, and [host]:port for other ports', () => {
    const f = file(`# comment\nweb1,10.0.0.1 ssh-ed25519 ${KEY_A}\n[10.0.0.1]:2222 ssh-ed25519 ${KEY_B} me@there\n`);
    expect(knownHostKeys(f, '10.0.0.1', 22)).toEqual([KEY_A]);
    expect(knownHostKeys(f, 'web1', 22)).toEqual([KEY_A]);
    expect(knownHostKeys(f, '10.0.0.1', 2222)).toEqual([KEY_B]);
    expect(knownHostKeys(f, '10.0.0.2', 22)).toEqual([]);
  });

  it('matches hashed entries (HashKnownHosts) and ignores revoked keys', () => {
    const salt = Buffer.from('0123456789abcdefghij');
    const mac = createHmac('sha1', salt).update(knownHostsName('10.0.0.9', 22)).digest('base64');
    const f = file(`|1|${salt.toString('base64')}|${mac} ssh-ed25519 ${KEY_A}\n@revoked 10.0.0.9 ssh-ed25519 ${KEY_B}\n`);
    expect(knownHostKeys(f, '10.0.0.9', 22)).toEqual([KEY_A]);
    expect(knownHostKeys(f, '10.0.0.8', 22)).toEqual([]);
  });

  it('takes the blob of a public key line', () => {
    expect(keyBlob(`ssh-ed25519 ${KEY_A} comment`)).toBe(KEY_A);
  });
});

describe('the keys pinned on first use (state)', () => {
  it('reads what strata wrote; a damaged file is STATE_CORRUPT, never "no key known"', () => {
    expect(pinnedHostKeys(file(`10.0.0.1 ssh-ed25519 ${KEY_A}\n[10.0.0.2]:2222 ssh-ed25519 ${KEY_B}\n`), '10.0.0.2', 2222)).toEqual([KEY_B]);
    expect(pinnedHostKeys(join(tmpdir(), 'strata-no-such-known-hosts'), '10.0.0.1', 22)).toEqual([]);
    // cut short while appended: the next pin would trust any key
    expect(() => pinnedHostKeys(file(`10.0.0.1 ssh-ed25519 ${KEY_A.slice(0, 20)}`), '10.0.0.1', 22)).toThrow(/known_hosts line 1 has no newline \(cut short\)/);
    expect(() => pinnedHostKeys(file(`10.0.0.1 ssh-ed25519\n`), '10.0.0.1', 22)).toThrow(/line 1 is not "HOST TYPE KEY"/);
    expect(() => pinnedHostKeys(file(`\u0000\u0000garbage\n`), '10.0.0.1', 22)).toThrow(/STATE_CORRUPT|the state file/);
    const dir = mkdtempSync(join(tmpdir(), 'strata-kh-dir-'));
    expect(() => pinnedHostKeys(dir, '10.0.0.1', 22)).toThrow(expect.objectContaining({ code: 'STATE_CORRUPT', message: expect.stringMatching(/is a directory, not a regular file/) }));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect(() => pinnedHostKeys(join(dir, 'fifo'), '10.0.0.1', 22)).toThrow(expect.objectContaining({ code: 'STATE_CORRUPT', message: expect.stringMatching(/is a FIFO \(named pipe\), not a regular file/) }));
  });
});

describe('a refused host key', () => {
  const presented = Buffer.from(KEY_B, 'base64');
  const base = { machine: 'web', host: '10.0.0.1', port: 22, presented };

  it('names the state directory known_hosts that trust on first use pinned it in, and how to accept a new key', () => {
    const m = hostKeyMismatchMessage({ ...base, source: { kind: 'trustOnFirstUse', file: '/var/lib/strata/state/known_hosts' } });
    expect(m).toMatch(/^host key of web \(10\.0\.0\.1:22\), SHA256:[A-Za-z0-9+/]{43}, does not match the key pinned for 10\.0\.0\.1 by trust on first use in \/var\/lib\/strata\/state\/known_hosts; refusing to connect/);
    expect(m).toMatch(/remove its line from that file \(ssh-keygen -R 10\.0\.0\.1 -f \/var\/lib\/strata\/state\/known_hosts\) and run again/);
    expect(m).toContain(`SHA256:${createHash('sha256').update(presented).digest('base64').replace(/=+$/, '')}`);
  });

  it('names the model field or the known_hosts file and why that one', () => {
    expect(hostKeyMismatchMessage({ ...base, source: { kind: 'hostKey' } })).toMatch(/does not match ssh\.hostKey of machine web in the network model; .*put it in ssh\.hostKey/);
    const kh = hostKeyMismatchMessage({ ...base, port: 2222, source: { kind: 'knownHosts', file: '/etc/my hosts', origin: 'ssh.knownHosts' } });
    expect(kh).toMatch(/the known_hosts entry for \[10\.0\.0\.1\]:2222 in \/etc\/my hosts \(ssh\.knownHosts of machine web\)/);
    expect(kh).toContain(`ssh-keygen -R '[10.0.0.1]:2222' -f '/etc/my hosts'`);
    expect(hostKeyMismatchMessage({ ...base, source: { kind: 'knownHosts', file: '/k', origin: 'STRATA_KNOWN_HOSTS' } })).toMatch(/in \/k \(\$STRATA_KNOWN_HOSTS\)/);
    expect(hostKeyMismatchMessage({ ...base, source: { kind: 'knownHosts', file: '/root/.ssh/known_hosts', origin: 'default' } })).toMatch(/\(the default known_hosts\)/);
  });
});

describe('reading a known_hosts file', () => {
  it('knows no keys for a missing file, and refuses one that is not a regular file at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-kh-'));
    expect(knownHostKeys(join(dir, 'none'), '10.0.0.1', 22)).toEqual([]);
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect(() => knownHostKeys(join(dir, 'fifo'), '10.0.0.1', 22)).toThrow(expect.objectContaining({ code: 'KNOWN_HOSTS_UNREADABLE', message: expect.stringMatching(/fifo is a FIFO \(named pipe\), not a regular file/) }));
    expect(() => knownHostKeys('/dev/zero', '10.0.0.1', 22)).toThrow(/the known_hosts file \/dev\/zero is a character device/);
    expect(() => knownHostKeys(dir, '10.0.0.1', 22)).toThrow(/is a directory/);
  });
});
