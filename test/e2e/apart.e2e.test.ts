import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StatusReport, deploymentStatus, driftOf } from '../../src/api/status.ts';
import { openRuntime } from '../../src/targets/connect.ts';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';
import { type Fixture, helloWorldFixture } from '../support/testnet.ts';
import { contextFor } from '../../src/api/services.ts';

// Two deployments on the same three real sshd hosts: hello-world (A) and its proxy variant (B),
// each with a file service besides. Everything B does leaves every process and file of A as
// it was; claims of a port or a path A holds are refused before any machine is changed.
const MACHINES = ['test1', 'test2', 'test3'];
const A = 'hello-world';
const B = 'hello-world-proxy';
let fx: Fixture;
let rootA: string;
let rootB: string;
const addr = (m: string) => fx.host(m).address;
const state = () => ['--state', fx.stateDir];
const edit = (file: string, from: string, to: string) => {
  const path = join(fx.work, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`edit of ${file} changed nothing`);
  writeFileSync(path, text.replace(from, to));
};

/** Every file, directory and symlink under DIR on a host: its kind, content hash, mode, inode and mtime. */
function tree(machine: string, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const full = fx.path(machine, join(dir, rel));
    if (!existsSync(full) && !isLink(full)) return;
    const st = lstatSync(full);
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(full)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${st.mode.toString(8)} ${st.ino}`;
      for (const n of readdirSync(full).sort()) walk(rel ? `${rel}/${n}` : n);
    } else out[rel] = `file ${st.mode.toString(8)} ${st.ino} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
  };
  walk('');
  return out;
}
const isLink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

/** A process's identity: its pid and its start time (a restarted service gets another). */
const started = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[19];

interface Snapshot {
  pids: Record<string, string>;
  files: Record<string, Record<string, string>>;
}

/** A's processes (pid and start time) and every file of A on every host: its records and its placed files. */
async function snapshotOfA(): Promise<Snapshot> {
  const s = await deploymentStatus(A, contextFor({ stateDir: fx.stateDir }));
  const pids: Record<string, string> = {};
  for (const m of s.machines) for (const i of m.items) if (i.pid) pids[`${m.machine}/${i.name}`] = `${i.pid} ${started(i.pid)}`;
  const files: Record<string, Record<string, string>> = {};
  for (const m of MACHINES) {
    files[`${m}:records`] = tree(m, `/var/lib/strata/deployments/${A}`);
    files[`${m}:placed`] = tree(m, '/tmp/apart/a');
  }
  return { pids, files };
}

const itemsOf = (s: StatusReport) => s.machines.flatMap((m) => m.items.map((i) => `${m.machine}/${i.name}:${i.state}`)).sort();

beforeAll(async () => {
  fx = await helloWorldFixture('127.0.44', MACHINES);
  rootA = join(fx.work, 'strata.testnet.yaml');
  rootB = join(fx.work, 'strata.proxy.testnet.yaml');
  // Both deployments place files on every machine: A under /tmp/apart/a, B under /tmp/apart/b.
  writeFileSync(join(fx.work, 'network.yaml'), readFileSync(join(fx.work, 'network.yaml'), 'utf8').replace(/(test\d):\n/g, '$1:\n    allowedPaths: [/tmp/apart]\n'));
  const pages = (name: string, path: string) => `
  ${name}:
    type: file
    artifact: services/client
    path: ${path}
`;
  writeFileSync(join(fx.work, 'services.yaml'), `${readFileSync(join(fx.work, 'services.yaml'), 'utf8')}${pages('a-pages', '/tmp/apart/a')}`);
  writeFileSync(join(fx.work, 'services.proxy.yaml'), `${readFileSync(join(fx.work, 'services.proxy.yaml'), 'utf8')}${pages('b-pages', '/tmp/apart/b')}`);
  edit('distribution.yaml', 'hello-world-client: [test1, test3]', 'hello-world-client: [test1, test3]\n  a-pages: [test1, test2, test3]');
  edit('distribution.proxy.yaml', 'hello-world-client: test1', 'hello-world-client: test1\n  b-pages: [test1, test2, test3]');
  // Deployments that claim what A holds: a port (5001 on test1) and a placed path (inside A's tree).
  const intruder = (name: string, services: string, distribution: string) => {
    writeFileSync(join(fx.work, `${name}.yaml`), `name: ${name}\nnetwork: [network.yaml, testnet/network.physical.yaml]\nservices: services.${name}.yaml\ndistribution: distribution.${name}.yaml\n`);
    writeFileSync(join(fx.work, `services.${name}.yaml`), services);
    writeFileSync(join(fx.work, `distribution.${name}.yaml`), distribution);
  };
  intruder('squatter', 'services:\n  squatter:\n    type: process\n    artifact: services/server\n    start: node server.js\n    ports:\n      main: 5001\n', 'distribution:\n  squatter: test1\n');
  intruder('overwriter', 'services:\n  overwriter:\n    type: file\n    artifact: services/server\n    path: /tmp/apart/a/sub\n', 'distribution:\n  overwriter: test2\n');
});

afterAll(async () => {
  await fx?.close();
});

describe('two deployments on the same machines', () => {
  let before: Snapshot;

  it('both deploy on the same three machines and both run', async () => {
    const a = await cli('apply', rootA, ...state(), '-q');
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    before = await snapshotOfA();
    expect(Object.keys(before.pids).sort()).toEqual(['test1/hello-world-client', 'test2/hello-world-server', 'test3/hello-world-client']);

    const b = await cli('apply', rootB, ...state(), '-q');
    expect(b.err).toBe('');
    expect(b.code).toBe(0);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n'); // A: client → server
    expect(await ask(addr('test1'), 5011)).toBe('Hello world!\n'); // B: client → proxy → server
    expect(await snapshotOfA()).toEqual(before);
    for (const m of MACHINES) {
      // Each deployment's records live in its own directory; the store is shared.
      expect(readFileSync(fx.path(m, `/var/lib/strata/deployments/${A}/generations/current`), 'utf8').trim()).toBe('1');
      expect(readFileSync(fx.path(m, `/var/lib/strata/deployments/${B}/generations/current`), 'utf8').trim()).toBe('1');
      expect(readlinkSync(fx.path(m, `/var/lib/strata/deployments/${B}/store`))).toBe('../../store');
      expect(existsSync(fx.path(m, '/var/lib/strata/items'))).toBe(false);
      expect(readdirSync(fx.path(m, '/tmp/apart/b')).sort()).toEqual(['client.js', 'package.json']);
    }
    // Claims are asked about only when a plan claims something new: a plan with no change still logs in nowhere.
    const logins = MACHINES.map((m) => fx.logins(m));
    expect((await cli('plan', rootA, ...state())).code).toBe(0);
    expect((await cli('apply', rootB, ...state(), '-q')).code).toBe(0);
    expect(MACHINES.map((m) => fx.logins(m))).toEqual(logins);
  });

  it('the status of each lists only its own items, and each machine keeps them apart', async () => {
    const sa = await deploymentStatus(A, contextFor({ stateDir: fx.stateDir }));
    const sb = await deploymentStatus(B, contextFor({ stateDir: fx.stateDir }));
    expect(itemsOf(sa)).toEqual([
      'test1/a-pages:present', 'test1/hello-world-client:running', 'test2/a-pages:present', 'test2/hello-world-server:running', 'test3/a-pages:present', 'test3/hello-world-client:running',
    ]);
    expect(itemsOf(sb)).toEqual([
      'test1/b-pages:present', 'test1/hello-world-client:running', 'test2/b-pages:present', 'test2/hello-world-proxy:running', 'test3/b-pages:present', 'test3/hello-world-server:running',
    ]);
    // The drift probe of each finds nothing to put back: the other's processes are not its drift.
    expect(driftOf(sa)).toEqual([]);
    expect(driftOf(sb)).toEqual([]);
    const pidsA = sa.machines.flatMap((m) => m.items.flatMap((i) => (i.pid ? [i.pid] : [])));
    const pidsB = sb.machines.flatMap((m) => m.items.flatMap((i) => (i.pid ? [i.pid] : [])));
    expect(pidsA.filter((p) => pidsB.includes(p))).toEqual([]);
    // What the machine itself reports for B: B's items only, though both deploy hello-world-server and -client.
    const m3 = JSON.parse(readFileSync(fx.path('test3', `/var/lib/strata/deployments/${B}/generations/1.json`), 'utf8')).machine;
    const rt = openRuntime(m3, B, { stateDir: fx.stateDir });
    try {
      const raw = await rt.status();
      expect(raw.items.map((i) => i.key).sort()).toEqual(m3.items.map((i: { key: string }) => i.key).sort());
      expect(raw.items.find((i) => i.key === 's.hello-world-server')?.pid).not.toBe(undefined);
      expect(raw.items.some((i) => i.key === 's.hello-world-client')).toBe(false); // A's client on test3 is not B's
      // And what the others hold, as the machine reports it: A's record.
      expect((await rt.others()).map((o) => `${o.deployment}:${o.record.generation}`)).toEqual([`${A}:1`]);
    } finally {
      await rt.target.close();
    }
  });

  it("an upgrade and a rollback of one leave every pid and file of the other untouched", async () => {
    edit('services.proxy.yaml', 'start: node server.js\n    ports: { main: 5010 }', 'start: node server.js\n    env: { GREETING: "Hello from B" }\n    ports: { main: 5010 }');
    const up = await cli('apply', rootB, ...state(), '-q');
    expect(up.err).toBe('');
    expect(up.code).toBe(0);
    expect(await ask(addr('test1'), 5011)).toBe('Hello from B\n');
    expect(await snapshotOfA()).toEqual(before);

    const back = await cli('rollback', rootB, ...state(), '-q');
    expect(back.err).toBe('');
    expect(back.code).toBe(0);
    expect(await ask(addr('test1'), 5011)).toBe('Hello world!\n');
    expect(await snapshotOfA()).toEqual(before);
  });

  it('a deployment claiming a port the other holds is refused at plan time, exit 2, touching nothing', async () => {
    for (const verb of ['plan', 'apply']) {
      const r = await cli(verb, join(fx.work, 'squatter.yaml'), ...state());
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`${join(fx.work, 'services.squatter.yaml')}:7:`);
      expect(r.err).toMatch(/services\.squatter\.ports\.main: deployment "squatter" claims port 5001 on 127\.0\.44\.\d+ on machine test1, but deployment "hello-world" holds port 5001 on 127\.0\.44\.\d+ there \(its hello-world-client, generation 1\)/);
    }
    expect(existsSync(fx.path('test1', '/var/lib/strata/deployments/squatter'))).toBe(false);
    expect(existsSync(join(fx.stateDir, 'deployments/squatter/journal.jsonl'))).toBe(false);
    expect(await snapshotOfA()).toEqual(before);
  });

  it('a deployment placing a path inside the tree the other placed is refused, exit 2, touching nothing', async () => {
    const r = await cli('apply', join(fx.work, 'overwriter.yaml'), ...state());
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain(`${join(fx.work, 'services.overwriter.yaml')}:5:`);
    expect(r.err).toMatch(/services\.overwriter\.path: deployment "overwriter" claims the tree under path \/tmp\/apart\/a\/sub on machine test2, but deployment "hello-world" holds the tree under path \/tmp\/apart\/a there \(its a-pages, generation 1\)/);
    expect(existsSync(fx.path('test2', '/tmp/apart/a/sub'))).toBe(false);
    expect(existsSync(fx.path('test2', '/var/lib/strata/deployments/overwriter'))).toBe(false);
    expect(await snapshotOfA()).toEqual(before);
  });

  it("a claim a running transition of another deployment has announced is refused too", async () => {
    // A transition of "ghost" holds its lock on test1 and has announced port 5030 there.
    const ghost = fx.path('test1', '/var/lib/strata/deployments/ghost');
    mkdirSync(join(ghost, 'lock'), { recursive: true });
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(join(ghost, 'lock/owner'), `ghost:1 t1 4242 ${now} ${now + 600}\n`);
    const item = { key: 's.ghost', machine: 'test1', layer: 'service', name: 'ghost', module: 'process', spec: { start: 'x', env: { PORT: '5030' } }, dependsOn: [], stateful: false, hash: 'g' };
    writeFileSync(join(ghost, 'claims.pending'), JSON.stringify({ deployment: 'ghost', generation: 1, manifestHash: 'g', machine: { name: 'test1', address: addr('test1'), target: { kind: 'ssh' }, items: [item] } }));
    edit('services.squatter.yaml', 'main: 5001', 'main: 5030');
    const r = await cli('apply', join(fx.work, 'squatter.yaml'), ...state());
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/services\.squatter\.ports\.main: deployment "squatter" claims port 5030 .* but deployment "ghost" holds port 5030 .* \(its ghost, generation 1, being deployed now\)/);
    rmSync(ghost, { recursive: true });
    edit('services.squatter.yaml', 'main: 5030', 'main: 5001');
  });

  it('of two deployments whose first transitions claim the same path at the same moment, at most one gets it', async () => {
    const racer = (name: string) => {
      writeFileSync(join(fx.work, `${name}.yaml`), `name: ${name}\nnetwork: [network.yaml, testnet/network.physical.yaml]\nservices: services.${name}.yaml\ndistribution: distribution.${name}.yaml\n`);
      writeFileSync(join(fx.work, `services.${name}.yaml`), `services:\n  ${name}:\n    type: file\n    artifact: services/${name === 'racer1' ? 'server' : 'proxy'}\n    path: /tmp/apart/race\n`);
      writeFileSync(join(fx.work, `distribution.${name}.yaml`), `distribution:\n  ${name}: test3\n`);
      // Each from its own state directory, as two controllers would.
      return cli('apply', join(fx.work, `${name}.yaml`), '--state', join(fx.work, `.state-${name}`), '-q');
    };
    const results = await Promise.all([racer('racer1'), racer('racer2')]);
    const won = results.filter((r) => r.code === 0);
    expect(won.length).toBeLessThanOrEqual(1);
    for (const r of results.filter((x) => x.code !== 0)) {
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(/claims the tree under path \/tmp\/apart\/race on machine test3, but deployment "racer[12]" holds the tree under path \/tmp\/apart\/race there/);
    }
    const placed = existsSync(fx.path('test3', '/tmp/apart/race')) ? readdirSync(fx.path('test3', '/tmp/apart/race')).sort() : [];
    if (won.length === 0) expect(placed).toEqual([]);
    else expect(placed).toEqual(results[0]!.code === 0 ? ['package.json', 'server.js'] : ['package.json', 'proxy.js']);
    expect(await snapshotOfA()).toEqual(before);
  });

  it('destroy of one stops only its own services and removes only its own files', async () => {
    const d = await cli('destroy', rootB, ...state(), '-q');
    expect(d.err).toBe('');
    expect(d.code).toBe(0);
    await expect(ask(addr('test1'), 5011)).rejects.toThrow(/ECONNREFUSED/);
    for (const m of MACHINES) expect(readdirSync(fx.path(m, '/tmp/apart/b'))).toEqual([]);
    expect(await snapshotOfA()).toEqual(before);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
  });
});
