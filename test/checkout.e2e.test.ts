import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPath, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../src/testnet/index.ts';
import { cli } from './support/cli.ts';

// Section 2 of the trust boundary: nothing outside the deployment directory is read from a
// checkout, and file modes arrive as they are in it. Real files and symlinks, a real sshd host.
let work: string;
let home: string;
let net: Testnet;
let web: TestnetHost;
let stateDir: string;
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nthe controller host key, never to be shipped\n-----END OPENSSH PRIVATE KEY-----\n';

const logins = () => (readFileSync(join(web.dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
const servicesNaming = (artifact: string, path: string) => `services:\n  site:\n    type: file\n    artifact: ${artifact}\n    path: ${path}\n`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-checkout-'));
  stateDir = join(work, 'state');
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['web'], subnet: '127.0.42' });
  web = net.hosts[0]!;
  // A directory outside the checkout that holds something secret of the controller host.
  home = mkdtempSync(join(tmpdir(), 'strata-checkout-home-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
  writeFileSync(join(home, '.ssh', 'id_ed25519'), KEY, { mode: 0o600 });
  const repo = join(work, 'repo');
  mkdirSync(join(repo, 'site'), { recursive: true });
  symlinkSync(home, join(repo, 'hostdir'));
  for (const [name, mode, text] of [['index.html', 0o644, 'hi\n'], ['server.key', 0o600, 'site key\n'], ['reload.sh', 0o755, '#!/bin/sh\n'], ['group.conf', 0o640, 'g\n']] as const) {
    writeFileSync(join(repo, 'site', name), text);
    chmodSync(join(repo, 'site', name), mode);
  }
  writeFileSync(
    join(repo, 'network.yaml'),
    `machines:\n  web:\n    address: ${web.address}\n    allowedPaths: [/tmp/www, /tmp/keys]\n    ssh: { hostKey: "${web.hostKey}", identity: "${net.identityFile}" }\n`,
  );
  writeFileSync(join(repo, 'distribution.yaml'), 'distribution:\n  site: web\n');
  writeFileSync(join(repo, 'strata.yaml'), 'name: checkout\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

describe('a checkout on a real sshd host', () => {
  it('refuses artifact: hostdir/.ssh with exit 2 at its file:line:column, and nothing reaches the machine', async () => {
    const repo = join(work, 'repo');
    writeFileSync(join(repo, 'services.yaml'), servicesNaming('hostdir/.ssh', '/tmp/keys'));
    const before = logins();
    for (const command of ['plan', 'apply']) {
      const r = await cli(command, join(repo, 'strata.yaml'), '--state', stateDir);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`${join(repo, 'services.yaml')}:4:5: services.site.artifact: artifact "hostdir/.ssh" leads outside the deployment directory ${repo}: hostdir is a symlink to ${home}`);
      expect(r.out + r.err).not.toContain('never to be shipped');
    }
    // The trailing-slash spelling is the same refusal.
    writeFileSync(join(repo, 'services.yaml'), servicesNaming('hostdir/', '/tmp/keys'));
    const slash = await cli('apply', join(repo, 'strata.yaml'), '--state', stateDir);
    expect(slash.code).toBe(2);
    expect(slash.err).toMatch(/services\.yaml:4:5: services\.site\.artifact: artifact "hostdir" leads outside/);
    // No SSH login, no runtime, no file: the machine was never touched.
    expect(logins()).toBe(before);
    expect(existsSync(hostPath(web, '/tmp/keys'))).toBe(false);
    expect(readdirSync(hostPath(web, '/var/lib/strata'))).toEqual([]);
    expect(existsSync(join(stateDir, 'deployments'))).toBe(false);
  });

  it('deploys an artifact holding a 0600 file, which is 0600 on the machine', async () => {
    const repo = join(work, 'repo');
    writeFileSync(join(repo, 'services.yaml'), servicesNaming('site', '/tmp/www'));
    const r = await cli('apply', join(repo, 'strata.yaml'), '--state', stateDir);
    expect(r.code, r.err).toBe(0);
    const modeOf = (p: string) => (statSync(hostPath(web, p)).mode & 0o7777).toString(8);
    expect(readFileSync(hostPath(web, '/tmp/www/server.key'), 'utf8')).toBe('site key\n');
    expect({
      'server.key': modeOf('/tmp/www/server.key'),
      'group.conf': modeOf('/tmp/www/group.conf'),
      'reload.sh': modeOf('/tmp/www/reload.sh'),
      'index.html': modeOf('/tmp/www/index.html'),
    }).toEqual({ 'server.key': '600', 'group.conf': '640', 'reload.sh': '755', 'index.html': '644' });
    // The copy in the machine's artifact store is no more readable than the placed one.
    const store = readdirSync(hostPath(web, '/var/lib/strata/store')).filter((h) => !h.startsWith('.'));
    expect(store).toHaveLength(1);
    expect(modeOf(`/var/lib/strata/store/${store[0]}/server.key`)).toBe('600');
  });
});
