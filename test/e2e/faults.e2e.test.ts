import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentStatus } from '../../src/api/status.ts';
import { Controller } from '../../src/controller/controller.ts';
import { parseControllerConfig } from '../../src/controller/loadConfig.ts';
import { gitSourceFor } from '../../src/controller/gitSource.ts';
import { cli } from '../support/cli.ts';
import { until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { ask } from '../support/net.ts';
import { startHostSshd, stopHostSshd } from '../support/sshd.ts';
import { spawnStrata } from '../support/strataProcess.ts';
import { type Fixture, helloWorldFixture } from '../support/testnet.ts';
import { contextFor } from '../../src/api/services.ts';

// Machine faults and concurrent transitions on real sshd hosts: a machine whose sshd dies in
// the middle of a transition (CLI and controller), a failing activation, a step that outlasts
// the command timeout, two applies at once (on one state directory, and as two controllers
// with their own), and machine locks with leases: a stale one is broken and reported, a live
// one never, and a long transition keeps its own by renewing it.

const SUBNET = '127.0.37';
const MACHINES = ['test1', 'test2', 'test3'];

let fx: Fixture;
let root: string;
let server = 'test2';
let controller: Controller | undefined;
/** Hosts whose sshd a test stopped and has not started again. */
const stopped = new Set<string>();
const addr = (m: string) => fx.host(m).address;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const journalOf = (stateDir: string) => join(stateDir, 'deployments', 'hello-world', 'journal.jsonl');
const lockOf = (m: string) => fx.path(m, '/var/lib/strata/deployments/hello-world/lock');

function edit(file: string, from: string | RegExp, to: string): void {
  const path = join(fx.work, file);
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${file} changed nothing`);
  writeFileSync(path, next);
}

/** Moves the server to the other of test2 and test3 (the clients on test1 and test3 follow it). */
function moveServer(): string {
  const next = server === 'test2' ? 'test3' : 'test2';
  edit('distribution.yaml', `hello-world-server: ${server}`, `hello-world-server: ${next}`);
  server = next;
  return next;
}

async function expectConverged(stateDir = fx.stateDir): Promise<void> {
  const current = readFileSync(join(stateDir, 'deployments', 'hello-world', 'current'), 'utf8').trim();
  expect(existsSync(journalOf(stateDir)), 'journal left').toBe(false);
  for (const m of MACHINES) {
    expect(existsSync(lockOf(m)), `lock on ${m}`).toBe(false);
    expect(readFileSync(fx.path(m, '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim(), `generation on ${m}`).toBe(current);
  }
  expect(await ask(addr(server), 5000)).toBe('Hello world!\n');
  await expect(ask(addr(server === 'test2' ? 'test3' : 'test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
  for (const m of ['test1', 'test3']) expect(await ask(addr(m), 5001), `client on ${m}`).toBe('Hello world!\n');
  const status = await deploymentStatus('hello-world', contextFor({ stateDir }));
  for (const m of status.machines) for (const i of m.items) expect(`${m.machine}/${i.name}: ${i.state}`).toBe(`${m.machine}/${i.name}: running`);
}

/** Writes a machine lock as another controller would hold it (times by this host's clock, which the test hosts share). */
function fakeLock(machine: string, opts: { token: string; takenAgo: number; expiresIn: number }): string {
  const now = Math.floor(Date.now() / 1000);
  const line = `ghost:0badc0ffee00 ${opts.token} 4242 ${now - opts.takenAgo} ${now + opts.expiresIn}\n`;
  mkdirSync(lockOf(machine));
  writeFileSync(join(lockOf(machine), 'owner'), line);
  return line;
}

beforeAll(async () => {
  fx = await helloWorldFixture(SUBNET, MACHINES);
  root = join(fx.work, 'strata.testnet.yaml');
  edit('services.yaml', 'start: node server.js', 'start: sleep 0.5 && exec node server.js');
  edit('services.yaml', 'start: node client.js', 'start: sleep 0.5 && exec node client.js');
  const first = await cli('apply', root, '--state', fx.stateDir, '-q');
  expect(first.err).toBe('');
  expect(first.code).toBe(0);
});

afterAll(async () => {
  await controller?.stop();
  if (fx) {
    for (const m of stopped) await startHostSshd(fx.net, m).catch(() => undefined);
    await fx.close();
  }
});

describe('machine faults', () => {
  it("a machine whose sshd dies mid-transition: apply fails naming it, the other machines are rolled back; once it is back, apply recovers and converges", async () => {
    const before = server;
    moveServer();
    const run = spawnStrata(['apply', root, '--state', fx.stateDir], { cwd: fx.work });
    // The clients' deactivation is done, the server is being moved: now test1 (a client's machine) goes away.
    expect(await run.waitFor((l) => new RegExp(`✓ \\d+\\. deactivate hello-world-server on ${before}`).test(l))).toBe(true);
    await stopHostSshd(fx.net, 'test1');
    stopped.add('test1');
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(1);
    const err = run.stderr();
    expect(err).toMatch(/test1 at 127\.0\.37\.1:22: connect ECONNREFUSED|lost the connection to test1/);
    expect(err).toMatch(/rollback incomplete: .*on test1/);

    // Everything done on the machines that answer was undone: the server runs where it ran.
    expect(await ask(addr(before), 5000)).toBe('Hello world!\n');
    await expect(ask(addr(server), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
    for (const m of ['test2', 'test3']) expect(existsSync(lockOf(m)), `lock on ${m}`).toBe(false);
    // test1 could not be reached: the journal stays until recovery can finish.
    expect(existsSync(journalOf(fx.stateDir))).toBe(true);

    // While it is down, apply recovers nothing and says why.
    const down = await cli('apply', root, '--state', fx.stateDir, '--connect-timeout', '2');
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/cannot recover the interrupted transition of hello-world .*test1.*ECONNREFUSED/);

    await startHostSshd(fx.net, 'test1');
    stopped.delete('test1');
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/recovery \(rolled-back\): rolled back the interrupted transition/);
    await expectConverged();
  }, 60_000);

  it('the controller: a machine lost mid-transition fails the reconcile, which is retried with backoff and converges once the machine is back', async () => {
    // The working copy becomes the controller's (local) repository; the controller shares the CLI's state.
    writeFileSync(join(fx.work, '.gitignore'), '/.state/\n/testnet/*\n!/testnet/network.physical.yaml\n');
    const repo = WorkRepo.init(fx.work);
    repo.commit('hello world, slow starts');
    const logs: Record<string, any>[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, any>) });
    const config = parseControllerConfig(
      'controller.yaml',
      `stateDir: ${JSON.stringify(fx.stateDir)}
listen: 127.0.0.1:0
deployments:
  - name: hello-world
    repository: { url: ${JSON.stringify(fx.work)}, branch: main }
    path: strata.testnet.yaml
    interval: 10m
    probeInterval: 10m
    connectTimeout: 2s
    commandTimeout: 60s
    ssh: { allowedFiles: [${JSON.stringify(fx.net.dir)}] }
`,
    );
    controller = new Controller(config, { log, sourceFor: gitSourceFor });
    controller.start();
    const head = repo.head();
    await until(() => controller!.get('hello-world').lastAppliedRevision === head, 30_000, 'the controller to see the deployed commit');

    const before = server;
    moveServer();
    const moved = repo.commit('move the server');
    await until(() => controller!.get('hello-world').plan?.steps.some((s) => s.action === 'activate' && s.item === 'hello-world-server' && s.state === 'running'), 30_000, 'the server to be activated on its new machine');
    await stopHostSshd(fx.net, 'test1');
    stopped.add('test1');
    const failed = await until(
      () => {
        const s = controller!.get('hello-world');
        return s.consecutiveFailures >= 1 && s.lastFailure?.revision === moved ? s : undefined;
      },
      30_000,
      'the reconcile to fail',
    );
    expect(failed.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });
    expect(failed.lastFailure?.message).toMatch(/test1/);
    expect(failed.nextReconcileAt).toBeDefined();
    expect(logs.some((l) => /reconcile failed[\s\S]*test1[\s\S]*next try in/.test(String(l.msg)))).toBe(true);
    expect(await ask(addr(before), 5000)).toBe('Hello world!\n');

    await sleep(1000);
    await startHostSshd(fx.net, 'test1');
    stopped.delete('test1');
    const done = await until(
      () => {
        const s = controller!.get('hello-world');
        return s.lastAppliedRevision === moved && s.conditions.find((c) => c.type === 'Ready')?.status === 'True' ? s : undefined;
      },
      60_000,
      'the controller to converge once test1 is back',
      100,
    );
    expect(done.consecutiveFailures).toBe(0);
    expect(logs.some((l) => l.recovery === 'rolled-back' && /^recovery: rolled back the interrupted transition/.test(String(l.msg)))).toBe(true);
    await controller.stop();
    controller = undefined;
    await expectConverged();
  }, 120_000);

  it('an activation that fails is rolled back: the previous generation serves, nothing stays locked or journaled', async () => {
    edit('services.yaml', 'start: sleep 0.5 && exec node server.js', 'start: node no-such-file.js');
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`activate hello-world-server on ${server} failed`));
    expect(r.err).toMatch(/rolled back 1 completed step/);
    edit('services.yaml', 'start: node no-such-file.js', 'start: sleep 0.5 && exec node server.js');
    await expectConverged();
  });

  it('a step that outlasts --command-timeout fails naming the machine and the timeout, and is undone once it is over', async () => {
    edit('services.yaml', 'start: sleep 0.5 && exec node server.js', 'start: sleep 3 && exec node server.js');
    const r = await cli('apply', root, '--state', fx.stateDir, '--command-timeout', '1.5');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`command on ${server} did not finish within 1.5s`));
    expect(r.err).toMatch(/rolled back 1 completed step/);
    edit('services.yaml', 'start: sleep 3 && exec node server.js', 'start: sleep 0.5 && exec node server.js');
    // The activation went on on the machine after the timeout; the undo waited for it, so no second server runs.
    await expectConverged();
  }, 60_000);
});

describe('concurrent transitions and machine locks', () => {
  it('two applies at once on the same state directory: one wins, the other exits 5 (STATE_LOCKED); the next apply finds nothing to do', async () => {
    moveServer();
    const a = spawnStrata(['apply', root, '--state', fx.stateDir], { cwd: fx.work });
    const b = spawnStrata(['apply', root, '--state', fx.stateDir], { cwd: fx.work });
    const [ea, eb] = await Promise.all([a.exited, b.exited]);
    expect([ea.code, eb.code].sort(), `${a.stderr()}\n---\n${b.stderr()}`).toEqual([0, 5]);
    const loser = ea.code === 5 ? a : b;
    expect(loser.stderr()).toMatch(/the state directory of deployment hello-world is locked by PID \d+ on \S+ since \d{4}-/);
    const again = await cli('apply', root, '--state', fx.stateDir);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/no changes/);
    await expectConverged();
  }, 60_000);

  it('two controllers (own state directories) on the same machines: the second gets MACHINE_LOCKED (exit 4) and breaks nothing', async () => {
    const other = join(fx.work, '.state-other');
    moveServer();
    const a = spawnStrata(['apply', root, '--state', fx.stateDir], { cwd: fx.work });
    expect(await a.waitFor((l) => /^ {2}✓/.test(l))).toBe(true);
    const b = await cli('apply', root, '--state', other);
    expect(b.code).toBe(4);
    expect(b.err).toMatch(/test\d is locked by [\w.-]+:[0-9a-f]{12} \(pid \d+, since .*, lease expires in \d+s\)/);
    expect((await a.exited).code, a.stderr()).toBe(0);
    expect(existsSync(journalOf(other))).toBe(false);
    expect(existsSync(join(other, 'deployments', 'hello-world', 'current'))).toBe(false);
    await expectConverged();
    rmSync(other, { recursive: true, force: true });
  }, 60_000);

  it('a lock whose lease expired (its owner is gone) is broken and reported', async () => {
    fakeLock('test2', { token: 'deadbeef', takenAgo: 600, expiresIn: -540 });
    moveServer();
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/broke the lock of ghost:0badc0ffee00 on test2 \(pid 4242, taken .*\): its lease expired 5\d\ds ago/);
    await expectConverged();
  });

  it('a live lock (lease not expired) is never broken: exit 4, and the lock is left as it was', async () => {
    const line = fakeLock('test2', { token: 'cafe', takenAgo: 5, expiresIn: 3600 });
    const before = server;
    moveServer();
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/test2 is locked by ghost:0badc0ffee00 \(pid 4242, since .*, lease expires in \d+s\)/);
    expect(readFileSync(join(lockOf('test2'), 'owner'), 'utf8')).toBe(line);
    for (const m of ['test1', 'test3']) expect(existsSync(lockOf(m)), `lock on ${m}`).toBe(false);
    expect(existsSync(journalOf(fx.stateDir))).toBe(false);
    expect(await ask(addr(before), 5000)).toBe('Hello world!\n');
    rmSync(lockOf('test2'), { recursive: true });
    expect((await cli('apply', root, '--state', fx.stateDir, '-q')).code).toBe(0);
    await expectConverged();
  });

  it('a transition longer than its lease renews it: another owner never breaks it', async () => {
    const other = join(fx.work, '.state-other');
    edit('services.yaml', 'start: sleep 0.5 && exec node server.js', 'start: sleep 4 && exec node server.js');
    moveServer();
    // A lease of 2 s, renewed every 667 ms, while the server alone takes 4 s to start.
    const a = spawnStrata(['apply', root, '--state', fx.stateDir, '--lock-lease', '2'], { cwd: fx.work });
    expect(await a.waitFor((l) => l.startsWith('locking '))).toBe(true);
    const lockedAt = Date.now();
    expect(await a.waitFor((l) => new RegExp(`✓ \\d+\\. deactivate hello-world-server`).test(l))).toBe(true);
    await sleep(Math.max(0, 3300 - (Date.now() - lockedAt)));
    expect(a.done()).toBe(false);
    const b = await cli('apply', root, '--state', other);
    expect(b.code, b.err).toBe(4);
    expect(b.err).toMatch(/is locked by .*lease expires in [012]s/);
    expect(b.err).not.toMatch(/broke the lock/);
    expect((await a.exited).code, a.stderr()).toBe(0);
    expect(a.stderr()).not.toMatch(/lost the lock/);
    rmSync(other, { recursive: true, force: true });
    edit('services.yaml', 'start: sleep 4 && exec node server.js', 'start: sleep 0.5 && exec node server.js');
    moveServer(); // (a move touches every machine, so each records the new generation)
    expect((await cli('apply', root, '--state', fx.stateDir, '-q')).code).toBe(0);
    await expectConverged();
  }, 60_000);
});
