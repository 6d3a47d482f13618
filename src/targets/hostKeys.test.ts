import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyBlob, knownHostKeys, knownHostsName, pinnedHostKeys } from './hostKeys.ts';

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
    expect(() => pinnedHostKeys(dir, '10.0.0.1', 22)).toThrow(/cannot be read \(EISDIR\)/);
  });
});
