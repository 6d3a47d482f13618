import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { processAlive } from '../../src/lib/proc.ts';
import { hostPath, readTestnet, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';

const { Client } = ssh2;

// Lets one test make a single host's sshd_config invalid, to exercise cleanup after a half-way failure.
const broken = vi.hoisted(() => ({ address: '' }));
vi.mock('../../src/testnet/sshdConfig.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/testnet/sshdConfig.ts')>();
  return {
    ...real,
    renderSshdConfig: (o: { address: string; port: number }) =>
      o.address === broken.address ? `${real.renderSshdConfig(o)}NoSuchSshdOption yes\n` : real.renderSshdConfig(o),
  };
});

const SUBNET = '127.0.9';

/** Running = exists and is not a zombie (orphans are reaped lazily by PID 1 here). */
const isRunning = processAlive;

function keyBlob(hostKey: string): string {
  return hostKey.split(' ')[1] ?? '';
}

function connect(host: TestnetHost, identityFile: string, expectedHostKey = host.hostKey): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c));
    c.on('error', reject);
    c.connect({
      host: host.address,
      port: host.port,
      username: 'root',
      privateKey: readFileSync(identityFile),
      hostVerifier: (key: Buffer) => key.toString('base64') === keyBlob(expectedHostKey),
      readyTimeout: 10_000,
    });
  });
}

function exec(c: ssh2.Client, command: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      stream.on('data', (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.on('close', (code: number | null) => resolve({ stdout, stderr, code }));
    });
  });
}

// Needs root and sshd like every end-to-end test: without them it fails, never skips (docs/testing.md).
describe('testnet', () => {
  let base: string;
  let dir: string;
  let net: Testnet;
  const clients: ssh2.Client[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    base = mkdtempSync(path.join(os.tmpdir(), 'strata-testnet-test-'));
    dir = path.join(base, 'net'); // does not exist yet: testnetUp creates (and down removes) it
    net = await testnetUp({ dir, machines: ['alpha', 'beta', 'gamma'], subnet: SUBNET, log: (m) => logs.push(m) });
    for (const h of net.hosts) clients.push(await connect(h, net.identityFile));
  });

  afterAll(async () => {
    for (const c of clients) c.end();
    if (dir) await testnetDown(dir);
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('gives each machine its own address, sshd and mount namespace', () => {
    expect(net.dir).toBe(dir);
    expect(net.hosts.map((h) => [h.name, h.address, h.port])).toEqual([
      ['alpha', '127.0.9.1', 22],
      ['beta', '127.0.9.2', 22],
      ['gamma', '127.0.9.3', 22],
    ]);
    const namespaces = new Set(net.hosts.map((h) => h.mountNs));
    expect(namespaces.size).toBe(3);
    expect(namespaces.has(readlinkSync('/proc/self/ns/mnt'))).toBe(false);
    for (const h of net.hosts) {
      expect(h.hostKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
      expect(isRunning(h.pid)).toBe(true);
      expect(h.mountNs).toMatch(/^mnt:\[\d+\]$/);
      expect(h.dir).toBe(path.join(dir, 'hosts', h.name));
    }
    expect(new Set(net.hosts.map((h) => h.hostKey)).size).toBe(3);
    expect(statSync(net.identityFile).mode & 0o777).toBe(0o600);
    expect(logs.some((l) => l.includes('3 hosts up'))).toBe(true);
  });

  it('records the testnet in DIR/testnet.json', () => {
    expect(readTestnet(dir)).toEqual(net);
    expect(readTestnet(path.join(base, 'nothing-here'))).toBeUndefined();
  });

  it('runs commands on each host as root, with a clean home and an empty /var/lib/strata', async () => {
    for (const [i, h] of net.hosts.entries()) {
      const r = await exec(clients[i]!, 'hostname; echo $HOME; ls -A /var/lib/strata | wc -l; echo $SSH_CONNECTION; id -u');
      expect(r.code).toBe(0);
      const [hostname, home, strataEntries, connection, uid] = r.stdout.trim().split('\n');
      expect(hostname).toBe(h.name);
      expect(home).toBe('/root');
      expect(strataEntries).toBe('0');
      expect(connection?.split(' ')[2]).toBe(h.address);
      expect(uid).toBe('0');
    }
  });

  it('keeps each host\'s /var/lib/strata and /tmp private, backed by hostPath on the real filesystem', async () => {
    const [h1, h2] = net.hosts as [TestnetHost, TestnetHost];
    const w = await exec(clients[0]!, 'echo one > /var/lib/strata/x && echo two > /tmp/y && mkdir -p /root/.cache && echo three > /root/.cache/z');
    expect(w.code).toBe(0);

    const r = await exec(clients[1]!, 'for f in /var/lib/strata/x /tmp/y /root/.cache/z; do test -e $f && echo present || echo absent; done');
    expect(r.stdout.trim().split('\n')).toEqual(['absent', 'absent', 'absent']);
    const back = await exec(clients[0]!, 'cat /var/lib/strata/x /tmp/y /root/.cache/z');
    expect(back.stdout).toBe('one\ntwo\nthree\n');

    expect(readFileSync(hostPath(h1, '/var/lib/strata/x'), 'utf8')).toBe('one\n');
    expect(readFileSync(hostPath(h1, '/tmp/y'), 'utf8')).toBe('two\n');
    expect(readFileSync(hostPath(h1, '/root/.cache/z'), 'utf8')).toBe('three\n');
    expect(existsSync(hostPath(h2, '/var/lib/strata/x'))).toBe(false);
    expect(existsSync(hostPath(h2, '/tmp/y'))).toBe(false);
    expect(hostPath(h1, '/var/lib/strata')).toBe(path.join(h1.dir, 'fs', 'var', 'lib', 'strata'));
  });

  it('hostPath refuses paths that are not private to the host', () => {
    const h = net.hosts[0]!;
    expect(() => hostPath(h, '/etc/passwd')).toThrow(expect.objectContaining({ code: 'TESTNET_PATH_NOT_MAPPED' }));
    expect(() => hostPath(h, '/var/lib/strata/../../../etc/passwd')).toThrow(expect.objectContaining({ code: 'TESTNET_PATH_NOT_MAPPED' }));
    expect(() => hostPath(h, '/var/lib/stratax')).toThrow(expect.objectContaining({ code: 'TESTNET_PATH_NOT_MAPPED' }));
    expect(() => hostPath(h, 'tmp/y')).toThrow(expect.objectContaining({ code: 'TESTNET_PATH_NOT_MAPPED' }));
  });

  it('serves each host\'s own host key: a wrong expected key is refused', async () => {
    const [h1, h2] = net.hosts as [TestnetHost, TestnetHost];
    await expect(connect(h1, net.identityFile, h2.hostKey)).rejects.toThrow(/verification failed/i);
    // and the right key still works on a fresh connection (sshd re-execs per connection)
    const c = await connect(h1, net.identityFile);
    expect((await exec(c, 'echo ok')).stdout).toBe('ok\n');
    c.end();
  });

  it('writes a physical network file listing every machine', () => {
    expect(net.physicalNetworkFile).toBe(path.join(dir, 'network.physical.yaml'));
    const text = readFileSync(net.physicalNetworkFile, 'utf8');
    expect(text.startsWith('# Generated by `strata testnet up`')).toBe(true);
    const doc = YAML.parse(text) as { machines: Record<string, { address: string; ssh: Record<string, unknown> }> };
    expect(Object.keys(doc.machines)).toEqual(['alpha', 'beta', 'gamma']);
    for (const h of net.hosts) {
      expect(doc.machines[h.name]).toEqual({
        address: h.address,
        ssh: { port: 22, user: 'root', hostKey: h.hostKey, identity: net.identityFile },
      });
    }
    expect(path.isAbsolute(net.identityFile)).toBe(true);
  });

  it('refuses a second testnet in the same DIR, bad names and non-loopback subnets', async () => {
    await expect(testnetUp({ dir, machines: ['alpha'], subnet: '127.0.10' })).rejects.toMatchObject({ code: 'TESTNET_EXISTS' });
    await expect(testnetUp({ dir: path.join(base, 'x'), machines: ['1bad'], subnet: SUBNET })).rejects.toMatchObject({ code: 'TESTNET_INVALID_MACHINE' });
    await expect(testnetUp({ dir: path.join(base, 'x'), machines: ['a', 'a'], subnet: SUBNET })).rejects.toMatchObject({ code: 'TESTNET_INVALID_MACHINE' });
    for (const subnet of ['10.0.1', '127.0.300', '127.0.1.5', '192.168.1']) {
      await expect(testnetUp({ dir: path.join(base, 'x'), machines: ['a'], subnet })).rejects.toMatchObject({ code: 'TESTNET_INVALID_SUBNET' });
    }
    // this testnet's addresses are taken
    await expect(testnetUp({ dir: path.join(base, 'x'), machines: ['a'], subnet: SUBNET })).rejects.toMatchObject({ code: 'TESTNET_ADDRESS_IN_USE' });
    expect(existsSync(path.join(base, 'x'))).toBe(false);
  });

  it('testnetDown stops the sshds and everything started through them, and removes DIR', async () => {
    const [h1] = net.hosts as [TestnetHost];
    const r = await exec(clients[0]!, 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!');
    const bgPid = Number(r.stdout.trim());
    expect(bgPid).toBeGreaterThan(0);
    // `$!` is known right after the fork; wait until that process has exec'd sleep.
    const cmdline = () => (isRunning(bgPid) ? readFileSync(`/proc/${bgPid}/cmdline`, 'utf8') : 'gone');
    for (let i = 0; i < 200 && !cmdline().startsWith('sleep'); i++) await new Promise((r) => setTimeout(r, 5));
    expect(cmdline()).toBe('sleep\x00300\x00');
    expect(readlinkSync(`/proc/${bgPid}/ns/mnt`)).toBe(h1.mountNs);

    for (const c of clients.splice(0)) c.end();
    const { stopped } = await testnetDown(dir);
    expect(stopped).toBeGreaterThanOrEqual(4); // 3 sshd listeners + the sleep (+ any session still closing)
    expect(isRunning(bgPid)).toBe(false);
    for (const h of net.hosts) expect(isRunning(h.pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(readTestnet(dir)).toBeUndefined();
    expect(await testnetDown(dir)).toEqual({ stopped: 0 });
  });
});

describe('testnet: failure half-way', () => {
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(path.join(os.tmpdir(), 'strata-testnet-fail-'));
  });
  afterAll(async () => {
    broken.address = '';
    await testnetDown(path.join(base, 'net'));
    rmSync(base, { recursive: true, force: true });
  });

  it('reports sshd -t\'s error, stops the hosts already started and removes what it made', async () => {
    broken.address = `${SUBNET}.2`;
    const dir = path.join(base, 'net');
    const err = await testnetUp({ dir, machines: ['one', 'two', 'three'], subnet: SUBNET }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TESTNET_SSHD_CONFIG' });
    expect((err as Error).message).toMatch(/test host two/);
    expect((err as Error).message).toMatch(/NoSuchSshdOption/);
    expect(existsSync(dir)).toBe(false);
    // hosts one and three were started and must be gone: their addresses are free again
    broken.address = '';
    const net = await testnetUp({ dir, machines: ['one', 'two', 'three'], subnet: SUBNET });
    expect(net.hosts).toHaveLength(3);
    const { stopped } = await testnetDown(dir);
    expect(stopped).toBeGreaterThanOrEqual(3); // + a readiness probe's sshd child that may still be exiting
  });
});
