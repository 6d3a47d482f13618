import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testnetDown, testnetUp, type Testnet } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';

// Secrets (the SSH private key) never appear in output, errors, plans or recorded state.
let work: string;
let net: Testnet;
let stateDir: string;
let keyText: string;
let keyFragments: string[];

/** Every file under dir, read as text. */
function allText(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out += statSync(p).isDirectory() ? allText(p) : readFileSync(p, 'latin1');
  }
  return out;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-secrets-'));
  stateDir = join(work, 'state');
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['web'], subnet: '127.0.30' });
  keyText = readFileSync(net.identityFile, 'utf8');
  // Pieces of the key's body: any of them in an output would be a leak.
  const body = keyText.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  keyFragments = [0, 40, 80, 120].map((i) => body.slice(i, i + 24)).filter((f) => f.length === 24);
  const web = net.hosts[0]!;
  mkdirSync(join(work, 'site'));
  writeFileSync(join(work, 'site/index.html'), 'hi\n');
  writeFileSync(join(work, 'services.yaml'), 'services:\n  site:\n    type: file\n    artifact: site\n    path: /tmp/www\n');
  writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  site: web\n');
  writeFileSync(join(work, 'network.yaml'), `machines:\n  web:\n    address: ${web.address}\n    allowedPaths: [/tmp/www]\n    ssh: { hostKey: "${web.hostKey}" }\n`);
  writeFileSync(join(work, 'strata.yaml'), 'name: secrets\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
});

afterAll(async () => {
  delete process.env.STRATA_SSH_KEY;
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

describe('secrets', () => {
  it('a key given as STRATA_SSH_KEY is used but appears in no output, plan or state file', async () => {
    expect(keyFragments.length).toBeGreaterThan(2);
    process.env.STRATA_SSH_KEY = keyText;
    const root = join(work, 'strata.yaml');
    const outputs = [
      await cli('plan', root, '--state', stateDir, '--format', 'json', '--out', join(work, 'plan.json')),
      await cli('apply', root, '--state', stateDir, '--json'),
      await cli('status', root, '--state', stateDir, '--json'),
      await cli('history', root, '--state', stateDir, '--json'),
    ];
    expect(outputs.map((o) => o.code)).toEqual([0, 0, 0, 0]);
    const everything = outputs.map((o) => o.out + o.err).join('') + readFileSync(join(work, 'plan.json'), 'utf8') + allText(stateDir);
    for (const f of keyFragments) expect(everything).not.toContain(f);
    expect(everything).not.toContain('PRIVATE KEY');
  });

  it('a key that does not fit is refused without printing it', async () => {
    // Another key: authentication fails, and the error must not echo either key.
    const other = join(work, 'other_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherText = readFileSync(other, 'utf8');
    process.env.STRATA_SSH_KEY = otherText;
    writeFileSync(join(work, 'site/index.html'), 'changed\n');
    const r = await cli('apply', join(work, 'strata.yaml'), '--state', stateDir, '--json');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/authentication as root failed/);
    const body = otherText.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    for (const text of [r.out, r.err]) {
      expect(text).not.toContain(body.slice(0, 24));
      for (const f of keyFragments) expect(text).not.toContain(f);
    }
  });
});
