import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPath, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import { condition, ControllerApi, jsonLines, until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { spawnStrata, type StrataProcess } from '../support/strataProcess.ts';

// Section 2 of the trust boundary: nothing outside the deployment directory is read from a
// checkout, and file modes arrive as they are in it. Real files and symlinks, a real sshd host.
let work: string;
let home: string;
let net: Testnet;
let web: TestnetHost;
let gitweb: TestnetHost;
let stateDir: string;
let controller: StrataProcess | undefined;
/** The controller's HTTP port: this file's range is 18420-18429. */
const CONTROLLER_PORT = 18420;
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nthe controller host key, never to be shipped\n-----END OPENSSH PRIVATE KEY-----\n';

const logins = (host: TestnetHost = web) => (readFileSync(join(host.dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
const servicesNaming = (artifact: string, path: string) => `services:\n  site:\n    type: file\n    artifact: ${artifact}\n    path: ${path}\n`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-checkout-'));
  stateDir = join(work, 'state');
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['web', 'gitweb'], subnet: '127.0.42' });
  web = net.hosts.find((h) => h.name === 'web')!;
  gitweb = net.hosts.find((h) => h.name === 'gitweb')!;
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
  if (controller && !controller.done()) {
    controller.child.kill('SIGTERM');
    await controller.exited;
  }
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

  it('a real controller refuses a commit whose artifact is a symlink blob leading outside, and deploys the fixed commit', { timeout: 90_000 }, async () => {
    // The same models as a Git repository the controller follows; hostdir is committed as a
    // symlink (a blob of mode 120000) to the directory with the controller host's key.
    const repo = WorkRepo.init(join(work, 'git-repo'));
    repo.write({
      'hostdir': { symlink: home },
      'site/index.html': 'from git\n',
      'strata.yaml': 'name: checkout-git\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n',
      'network.yaml': `machines:\n  gitweb:\n    address: ${gitweb.address}\n    allowedPaths: [/tmp/git-www]\n    ssh: { hostKey: "${gitweb.hostKey}", identity: "${net.identityFile}" }\n`,
      'services.yaml': servicesNaming('hostdir/.ssh', '/tmp/git-www'),
      'distribution.yaml': 'distribution:\n  site: gitweb\n',
    });
    const refused = repo.commit('ship the host key');
    const config = join(work, 'controller.yaml');
    writeFileSync(
      config,
      `stateDir: ${JSON.stringify(join(work, 'controller-state'))}\nlisten: 127.0.0.1:${CONTROLLER_PORT}\ndeployments:\n  - name: checkout-git\n    repository: { url: ${JSON.stringify(repo.dir)}, branch: main, interval: 1s }\n    interval: 10m\n    probeInterval: 10m\n    ssh: { allowedFiles: [${JSON.stringify(net!.dir)}] }\n`,
    );
    controller = spawnStrata(['controller', '--config', config]);
    await until(() => jsonLines(controller!.stdout()).some((l) => String(l.msg).startsWith('controller listening on ')), 30_000, 'the controller to listen');
    const api = new ControllerApi(`http://127.0.0.1:${CONTROLLER_PORT}`);
    const stalled = await until(async () => {
      const s = await api.status('checkout-git');
      return s.lastFailedRevision === refused && condition(s, 'Stalled')?.status === 'True' ? s : undefined;
    }, 30_000, 'the controller to refuse the commit');
    expect(stalled.lastFailure).toMatchObject({ reason: 'ModelInvalid', terminal: true });
    expect(stalled.lastFailure!.message).toContain(
      `services.yaml:4:5: services.site.artifact: artifact "hostdir/.ssh" leads outside the deployment directory (the repository root): hostdir is a symlink to ${home}, an absolute path outside the repository`,
    );
    expect(JSON.stringify(stalled)).not.toContain('never to be shipped');
    expect(logins(gitweb)).toBe(0);
    expect(existsSync(hostPath(gitweb, '/tmp/git-www'))).toBe(false);

    const fixed = repo.commit('ship the site', { 'services.yaml': servicesNaming('site', '/tmp/git-www') });
    const deployed = await until(async () => {
      const s = await api.status('checkout-git');
      return s.lastAppliedRevision === fixed ? s : undefined;
    }, 30_000, 'the controller to deploy the fixed commit');
    expect(deployed.generation).toBe(1);
    expect(readFileSync(hostPath(gitweb, '/tmp/git-www/index.html'), 'utf8')).toBe('from git\n');
    controller.child.kill('SIGTERM');
    expect((await controller.exited).code).toBe(0);
  });
});
