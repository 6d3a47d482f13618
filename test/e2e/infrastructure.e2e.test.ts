import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planDeployment } from '../../src/api/plan.ts';
import { deploymentStatus } from '../../src/api/status.ts';
import { type Testnet, hostPath, testnetDown, testnetUp } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';
import { contextFor } from '../../src/api/services.ts';

// Machine configuration (directories, files, a daemon providing a container), script and file
// services, with host keys checked against a hashed known_hosts file, on real sshd hosts.
let work: string;
let net: Testnet;
let root: string;
let stateDir: string;
const host = (name: string) => net.hosts.find((h) => h.name === name)!;
const onHost = (name: string, p: string) => hostPath(host(name), p);
const edit = (file: string, from: string, to: string) => {
  const path = join(work, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no ${from}`);
  writeFileSync(path, text.replace(from, to));
};

function hashedKnownHosts(hosts: { address: string; hostKey: string }[]): string {
  return hosts
    .map((h) => {
      const salt = randomBytes(20);
      const mac = createHmac('sha1', salt).update(h.address).digest('base64');
      return `|1|${salt.toString('base64')}|${mac} ${h.hostKey}\n`;
    })
    .join('');
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-infra-'));
  cpSync(new URL('../fixtures/infra', import.meta.url), work, { recursive: true });
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['db', 'app'], subnet: '127.0.22' });
  writeFileSync(join(work, 'known_hosts'), hashedKnownHosts(net.hosts));
  const physical = net.hosts
    .map((h) => `  ${h.name}:\n    address: ${h.address}\n    ssh: { knownHosts: ${join(work, 'known_hosts')}, identity: ${net.identityFile} }\n`)
    .join('');
  writeFileSync(join(work, 'network.physical.yaml'), `machines:\n${physical}`);
  root = join(work, 'strata.yaml');
  stateDir = join(work, '.state');
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

describe('machine configuration and every service type', () => {
  it('applies infrastructure before services, and each module does its job', async () => {
    const plan = await planDeployment(root, contextFor({ stateDir }));
    const phases = plan.steps.map((s) => s.phase);
    expect(phases.lastIndexOf('infrastructure')).toBeLessThan(phases.indexOf('activate'));
    // The daemon waits for the machine's files and directories.
    const daemon = plan.steps.find((s) => s.item.name === 'kv')!;
    expect(daemon.after).toHaveLength(3);

    const r = await cli('apply', root, '--state', stateDir, '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);

    expect(statSync(onHost('db', '/tmp/srv/data')).mode & 0o777).toBe(0o750);
    expect(readFileSync(onHost('db', '/tmp/srv/app.conf'), 'utf8')).toBe('level = info\n');
    expect(statSync(onHost('db', '/tmp/srv/app.conf')).mode & 0o777).toBe(0o600);
    expect(readFileSync(onHost('db', '/tmp/srv/motd'), 'utf8')).toBe('motd from the repository\n');
    expect(await ask(host('db').address, 7000)).toBe('kv on 127.0.22.1:7000\n');
    expect(await ask(host('db').address, 7100)).toBe('reader in kv got: kv on 127.0.22.1:7000\n');
    expect(readFileSync(onHost('app', '/var/lib/strata/deployments/infra/state/s.setup/evidence'), 'utf8')).toBe('activated with one\n');
    expect(readFileSync(onHost('app', '/tmp/www/docs/README.txt'), 'utf8')).toBe('Read me.\n');
    expect(readFileSync(onHost('app', '/tmp/www/docs/sub/nested.txt'), 'utf8')).toBe('nested\n');
  });

  it('a changed machine file is rewritten, and nothing else is touched', async () => {
    const before = await deploymentStatus('infra', contextFor({ stateDir }));
    edit('network.yaml', 'level = info', 'level = debug');
    const plan = await planDeployment(root, contextFor({ stateDir }));
    expect(plan.changes.map((c) => `${c.action} ${c.name}`)).toEqual(['upgrade /tmp/srv/app.conf']);
    expect(plan.machines).toEqual(['db']);
    expect((await cli('apply', root, '--state', stateDir, '-q')).code).toBe(0);
    expect(readFileSync(onHost('db', '/tmp/srv/app.conf'), 'utf8')).toBe('level = debug\n');
    const after = await deploymentStatus('infra', contextFor({ stateDir }));
    const pids = (s: typeof before) => s.machines.flatMap((m) => m.items.map((i) => `${i.name}:${i.pid ?? '-'}`));
    expect(pids(after)).toEqual(pids(before));
  });

  it('a script service is deactivated and activated again when its environment changes', async () => {
    edit('services.yaml', 'SETTING: "one"', 'SETTING: "two"');
    expect((await cli('apply', root, '--state', stateDir, '-q')).code).toBe(0);
    expect(readFileSync(onHost('app', '/var/lib/strata/deployments/infra/state/s.setup/evidence'), 'utf8')).toBe('activated with two\n');
    expect(existsSync(onHost('app', '/var/lib/strata/deployments/infra/state/s.setup/deactivated'))).toBe(true);
  });

  it('removing a container and its daemon stops the service first, then the daemon', async () => {
    edit('distribution.yaml', '  reader: { machine: db, container: kv }\n', '');
    edit('network.yaml', '    containers:\n      kv: { daemon: kv, properties: { port: 7000 } }\n', '');
    edit('network.yaml', '    daemons:\n      kv:\n        start: node kv.js\n        artifact: daemons/kv\n        ports: { main: 7000 }\n        ready: { port: main }\n', '');
    const plan = await planDeployment(root, contextFor({ stateDir }));
    expect(plan.steps.map((s) => `${s.phase} ${s.action} ${s.item.name}`)).toEqual(['deactivate deactivate reader', 'cleanup deactivate kv']);
    expect((await cli('apply', root, '--state', stateDir, '-q')).code).toBe(0);
    await expect(ask(host('db').address, 7000)).rejects.toThrow(/ECONNREFUSED/);
    await expect(ask(host('db').address, 7100)).rejects.toThrow(/ECONNREFUSED/);
    // The file service on the other machine was not part of this change.
    expect(existsSync(onHost('app', '/tmp/www/docs/README.txt'))).toBe(true);
  });

  it('a known_hosts file without the presented key is refused', async () => {
    writeFileSync(join(work, 'known_hosts'), hashedKnownHosts(net.hosts.map((h) => ({ address: h.address, hostKey: net.hosts[0]!.hostKey }))));
    edit('services.yaml', 'SETTING: "two"', 'SETTING: "three"');
    const r = await cli('apply', root, '--state', stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/host key of app .* does not match the known_hosts entry/);
    expect(readFileSync(onHost('app', '/var/lib/strata/deployments/infra/state/s.setup/evidence'), 'utf8')).toBe('activated with two\n');
  });
});
