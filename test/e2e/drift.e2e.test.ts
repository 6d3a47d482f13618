import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentStatus } from '../../src/api/status.ts';
import { Controller } from '../../src/controller/controller.ts';
import { parseControllerConfig } from '../../src/controller/loadConfig.ts';
import { gitSourceFor } from '../../src/controller/gitSource.ts';
import { type Testnet, hostPath, testnetDown, testnetUp } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import { copyHelloWorldModels, until } from '../support/controller.ts';
import { ask } from '../support/net.ts';
import { contextFor } from '../../src/api/services.ts';

// Drift on real sshd hosts: a killed process and a corrupted file are found by the probe;
// with selfHeal off they are only reported, with it on only they are put back.
let work: string;
let repo: string;
let net: Testnet;
let stateDir: string;
const host = (n: string) => net.hosts.find((h) => h.name === n)!;
const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=Ada Tester', '-c', 'user.email=ada@example.test', ...args], { stdio: 'pipe' });
const pidOf = async (machine: string, name: string) =>
  (await deploymentStatus('hello-world', contextFor({ stateDir }))).machines.find((m) => m.machine === machine)?.items.find((i) => i.name === name)?.pid;

function controller(selfHeal: boolean): Controller {
  const config = parseControllerConfig(
    'drift.yaml',
    `stateDir: ${stateDir}
deployments:
  - name: hello-world
    repository: { url: ${repo}, branch: main }
    interval: 10m
    probeInterval: 1s
    selfHeal: ${selfHeal}
    ssh: { allowedFiles: [${JSON.stringify(net.dir)}] }
`,
  );
  const c = new Controller(config, { log: pino({ level: process.env.DRIFT_DEBUG ? 'debug' : 'silent' }), sourceFor: gitSourceFor });
  c.start();
  return c;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-drift-'));
  repo = join(work, 'repo');
  stateDir = join(work, 'state');
  mkdirSync(repo);
  copyHelloWorldModels(repo);
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['test1', 'test2', 'test3'], subnet: '127.0.28' });
  mkdirSync(join(repo, 'testnet'));
  writeFileSync(join(repo, 'testnet/network.physical.yaml'), readFileSync(net.physicalNetworkFile));
  // A file service whose placed file will be corrupted.
  mkdirSync(join(repo, 'services/motd'));
  writeFileSync(join(repo, 'services/motd/motd.txt'), 'welcome\n');
  writeFileSync(join(repo, 'services.yaml'), `${readFileSync(join(repo, 'services.yaml'), 'utf8')}\n  motd:\n    type: file\n    artifact: services/motd\n    path: /tmp/motd\n`);
  writeFileSync(join(repo, 'distribution.yaml'), `${readFileSync(join(repo, 'distribution.yaml'), 'utf8')}  motd: test3\n`);
  writeFileSync(join(repo, 'network.yaml'), `${readFileSync(join(repo, 'network.yaml'), 'utf8')}    allowedPaths: [/tmp/motd]\n`);
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'hello-world with a motd');
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

describe('drift', () => {
  it('with selfHeal off, a killed process and a changed file are reported and left alone', async () => {
    const c = controller(false);
    try {
      await until(async () => c.get('hello-world').generation === 1 && c.get('hello-world').drift?.action === 'none', 20_000, 'first deployment and a clean probe');
      const serverPid = await pidOf('test2', 'hello-world-server');
      if (!serverPid || serverPid < 2) throw new Error(`no pid for the server: ${serverPid}`);
      process.kill(-serverPid, 'SIGKILL');
      writeFileSync(hostPath(host('test3'), '/tmp/motd/motd.txt'), 'defaced\n');

      const s = await until(() => {
        const x = c.get('hello-world');
        return x.drift?.action === 'reported' && x.drift.items.length === 2 ? x : undefined;
      }, 10_000, 'drift reported');
      expect(s.drift!.items.map((i) => `${i.machine} ${i.name}`).sort()).toEqual(['test2 hello-world-server', 'test3 motd']);
      expect(s.drift!.items.find((i) => i.name === 'motd')!.reason).toBe('file /tmp/motd/motd.txt was changed');
      expect(s.conditions.find((x) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Drifted' });
      const metrics = await c.metrics.registry.metrics();
      expect(metrics).toMatch(/strata_drift_items\{deployment="hello-world"\} 2/);
      // Nothing was put back.
      await expect(ask(host('test2').address, 5000)).rejects.toThrow(/ECONNREFUSED/);
      expect(readFileSync(hostPath(host('test3'), '/tmp/motd/motd.txt'), 'utf8')).toBe('defaced\n');
      // strata status says the same, and exits 1.
      const status = await cli('status', '--deployment', 'hello-world', '--state', stateDir);
      expect(status.code).toBe(1);
      expect(status.out).toMatch(/hello-world-server: stopped {2}DRIFT: process \d+ is not running/);
    } finally {
      await c.stop();
    }
  });

  it('with selfHeal on, only the drifted items are restored', async () => {
    const clients = [await pidOf('test1', 'hello-world-client'), await pidOf('test3', 'hello-world-client')];
    const logins = ['test1', 'test2', 'test3'].map((m) => (readFileSync(join(host(m).dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length);
    const c = controller(true);
    try {
      const s = await until(() => {
        const x = c.get('hello-world');
        return x.drift?.action === 'healed' ? x : undefined;
      }, 20_000, 'drift healed');
      expect(s.drift!.items).toHaveLength(2);
      expect(await ask(host('test2').address, 5000)).toBe('Hello world!\n');
      expect(readFileSync(hostPath(host('test3'), '/tmp/motd/motd.txt'), 'utf8')).toBe('welcome\n');
      // No redeploy: the clients kept running, and no new generation was recorded.
      expect([await pidOf('test1', 'hello-world-client'), await pidOf('test3', 'hello-world-client')]).toEqual(clients);
      expect(c.get('hello-world').generation).toBe(1);
      expect(readFileSync(join(stateDir, 'deployments/hello-world/current'), 'utf8').trim()).toBe('1');
      // The next probe finds nothing, and test1 was only asked, never changed.
      await until(() => (c.get('hello-world').drift?.action === 'none' ? true : undefined), 10_000, 'a clean probe after healing');
      expect(existsSync(hostPath(host('test1'), '/var/lib/strata/deployments/hello-world/lock'))).toBe(false);
      expect(logins.every((n) => n >= 0)).toBe(true);
    } finally {
      await c.stop();
    }
  });
});
