import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateStore } from '../../src/api/context.ts';
import { openRuntime } from '../../src/targets/connect.ts';
import type { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { runtimePath } from '../../src/targets/runtime/script.ts';
import { processesInMountNs } from '../../src/testnet/processes.ts';
import { cli } from '../support/cli.ts';
import { ControllerApi, condition, jsonLines, sleep, until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { ask } from '../support/net.ts';
import { startHostSshd, stopHostSshd } from '../support/sshd.ts';
import { type StrataProcess, spawnStrata } from '../support/strataProcess.ts';
import { type Fixture, helloWorldFixture } from '../support/testnet.ts';
import { contextFor } from '../../src/api/services.ts';

// Machines that fail in awkward ways, on real sshd hosts (one fresh test network per part):
// - gone for good: its sshd is killed in the middle of a transition and never started again.
//   `strata abandon-machine` (and the controller's POST …/machines/M/abandon) finishes the
//   recovery treating its steps as lost, records a generation without it (who, when, why),
//   restores the stateful service it held on another machine from the newest snapshot, and
//   afterwards plan, apply, rollback and destroy never contact it;
// - a full disk (a small tmpfs over the runtime root inside the host's mount namespace): taking
//   the lock refuses before anything changes and never leaves an ownerless lock; a lock already
//   held is renewed, re-taken and released without free space;
// - frozen (SIGSTOP of everything in the host's mount namespace): the other machines' leases
//   are still renewed, so a second owner cannot break them, and --command-timeout covers
//   opening a command on the frozen machine.

const SUBNET = '127.0.46';
const PORT = 18460;
const MACHINES = ['test1', 'test2', 'test3'];
const SERVER_STATE = '/var/lib/strata/deployments/hello-world/state/s.hello-world-server';

let fx: Fixture;
let root: string;
const stopped = new Set<string>();
let controller: StrataProcess | undefined;
const addr = (m: string) => fx.host(m).address;
const journal = () => join(fx.stateDir, 'deployments', 'hello-world', 'journal.jsonl');

function edit(file: string, from: string | RegExp, to: string): void {
  const path = join(fx.work, file);
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${file} changed nothing`);
  writeFileSync(path, next);
}

/** Removes a machine from the logical and the physical network file. */
function dropMachine(name: string): void {
  for (const file of ['network.yaml', 'testnet/network.physical.yaml']) {
    const doc = YAML.parse(readFileSync(join(fx.work, file), 'utf8')) as { machines: Record<string, unknown> };
    delete doc.machines[name];
    writeFileSync(join(fx.work, file), YAML.stringify(doc, { lineWidth: 0 }));
  }
}

async function stop(machine: string): Promise<void> {
  await stopHostSshd(fx.net, machine);
  stopped.add(machine);
}

/** A fresh hello-world deployment on three new test hosts, services slow to start. */
async function setUp(opts: { stateful?: boolean; before?: () => Promise<void> } = {}): Promise<void> {
  fx = await helloWorldFixture(SUBNET, MACHINES);
  root = join(fx.work, 'strata.testnet.yaml');
  edit('services.yaml', 'start: node server.js', `start: sleep 0.5 && exec node server.js${opts.stateful ? '\n    stateful: true' : ''}`);
  edit('services.yaml', 'start: node client.js', 'start: sleep 0.5 && exec node client.js');
  await opts.before?.();
  const first = await cli('apply', root, '--state', fx.stateDir, '-q');
  expect(first.err).toBe('');
  expect(first.code).toBe(0);
}

async function tearDown(): Promise<void> {
  if (controller && !controller.done()) {
    controller.child.kill('SIGTERM');
    await controller.exited;
  }
  controller = undefined;
  if (fx) {
    for (const m of stopped) await startHostSshd(fx.net, m).catch(() => undefined);
    stopped.clear();
    await fx.close();
  }
}

describe('abandoning a machine gone for good', () => {
  beforeAll(() => setUp({ stateful: true }));
  afterAll(tearDown);

  it('CLI: recovery finishes without it, its items leave the recorded state, its stateful service is restored elsewhere from the newest snapshot, and nothing contacts it again', async () => {
    // The server keeps data on test2.
    mkdirSync(fx.path('test2', SERVER_STATE), { recursive: true });
    writeFileSync(join(fx.path('test2', SERVER_STATE), 'visits'), '41\n');

    // test2 dies in the middle of moving the server to test3 (after its data was snapshotted and it was stopped there).
    edit('distribution.yaml', 'hello-world-server: test2', 'hello-world-server: test3');
    const run = spawnStrata(['apply', root, '--state', fx.stateDir], { cwd: fx.work });
    expect(await run.waitFor((l) => /✓ \d+\. deactivate hello-world-server on test2/.test(l))).toBe(true);
    await stop('test2');
    const exit = await run.exited;
    expect(exit.code, run.stderr()).toBe(1);
    expect(run.stderr()).toMatch(/rollback incomplete: .*test2.*it is tried again once test2 answers\. If it is gone for good, run `strata abandon-machine test2 --deployment hello-world --reason TEXT --yes`/);
    expect(existsSync(journal()), 'the journal stays: test2 could not be undone').toBe(true);

    // Recovery cannot finish while test2 is gone, and says what to do about it.
    const blocked = await cli('apply', root, '--state', fx.stateDir, '--connect-timeout', '2');
    expect(blocked.code).toBe(1);
    expect(blocked.err).toMatch(/cannot recover the interrupted transition of hello-world .*test2/);
    expect(blocked.err).toMatch(/strata abandon-machine test2 --deployment hello-world --reason TEXT --yes/);

    // Without --yes: what it would do, exit 2, nothing changed.
    const asked = await cli('abandon-machine', 'test2', root, '--state', fx.stateDir, '--reason', 'disk died');
    expect(asked.code).toBe(2);
    expect(asked.err).toMatch(/abandoning test2 of hello-world; the pending transition to generation 2 loses its \d+ step\(s\) there; its 1 item\(s\) leave the recorded state \(s\.hello-world-server\); hello-world-server would be restored from .*\.snap/);
    expect(existsSync(journal())).toBe(true);
    // Without --reason: a usage error.
    expect((await cli('abandon-machine', 'test2', root, '--state', fx.stateDir, '--yes')).code).toBe(2);
    // A machine the deployment does not have: exit 2.
    const unknown = await cli('abandon-machine', 'test9', root, '--state', fx.stateDir, '--reason', 'typo', '--yes');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/records no machine test9 .*its machines: test1, test2, test3/);

    // While test1 is down too, the abandonment is journaled but recovery cannot finish: it says so.
    await stop('test1');
    const partial = await cli('abandon-machine', 'test2', root, '--state', fx.stateDir, '--reason', 'disk died', '--yes', '--connect-timeout', '2');
    expect(partial.code).toBe(1);
    expect(partial.err).toMatch(/cannot recover the interrupted transition of hello-world .*test1/);
    expect(partial.err).toMatch(/test2 is abandoned for the pending transition: its recovery no longer contacts it/);
    expect(partial.err).not.toMatch(/test2 at /);
    await startHostSshd(fx.net, 'test1');
    stopped.delete('test1');

    const loginsBefore = fx.logins('test2');
    const done = await cli('abandon-machine', 'test2', root, '--state', fx.stateDir, '--reason', 'disk died', '--yes');
    expect(done.code, done.err).toBe(0);
    expect(done.out).toMatch(/abandoned test2 of hello-world \(by \S+@\S+: disk died\)/);
    expect(done.out).toMatch(/recovery \(rolled-back\): rolled back the interrupted transition to generation 2: \d+ of \d+ started steps undone, \d+ lost with abandoned test2/);
    expect(done.out).toMatch(/1 item left the recorded state: generation 2 has no test2/);
    expect(done.out).toMatch(/hello-world-server is restored from .*\.snap .* once the models place it on another machine/);
    expect(existsSync(journal())).toBe(false);
    // The clients on test1 and test3 run again (rolled back); nothing runs the server.
    for (const m of ['test1', 'test3']) expect(existsSync(fx.path(m, '/var/lib/strata/deployments/hello-world/lock')), `lock on ${m}`).toBe(false);
    await expect(ask(addr('test3'), 5000)).rejects.toThrow(/ECONNREFUSED/);

    // The audit record, in history.
    const history = await cli('history', root, '--state', fx.stateDir, '--json');
    const gen2 = (JSON.parse(history.out) as { generations: { generation: number; abandoned?: Record<string, unknown>; machines: number; current: boolean }[] }).generations[0]!;
    expect(gen2).toMatchObject({ generation: 2, current: true, machines: 2, abandoned: { machine: 'test2', reason: 'disk died', items: ['s.hello-world-server'], from: 1 } });
    expect((await cli('history', root, '--state', fx.stateDir)).out).toMatch(/\* {4}2 .* abandoned test2 by \S+ at \S+: disk died/);

    // The models without test2: plan and apply never contact it; the server is restored on test3 from the snapshot.
    dropMachine('test2');
    const plan = await cli('plan', root, '--state', fx.stateDir);
    expect(plan.code, plan.err).toBe(0);
    expect(plan.out).toMatch(/^Machines touched: test1, test3$/m);
    expect(plan.out).not.toMatch(/\[test2\]/);
    expect(plan.out).toMatch(/\+ hello-world-server on test3 \(add: its machine test2 was abandoned; its data is restored from the snapshot taken /);
    expect(plan.out).toMatch(/\[test3\] restore service hello-world-server/);
    const applied = await cli('apply', root, '--state', fx.stateDir);
    expect(applied.code, applied.err).toBe(0);
    expect(applied.err).toMatch(/restore hello-world-server on test3/);
    expect(readFileSync(join(fx.path('test3', SERVER_STATE), 'visits'), 'utf8')).toBe('41\n');
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
    for (const m of ['test1', 'test3']) expect(await ask(addr(m), 5001), `client on ${m}`).toBe('Hello world!\n');
    expect((await cli('status', root, '--state', fx.stateDir)).out).not.toMatch(/test2/);

    // Restore, rollback and destroy are no longer blocked, and never bring test2 back.
    const restored = await cli('restore', root, '--state', fx.stateDir, '--service', 'hello-world-server', '--yes');
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toMatch(/hello-world-server on test3: restored from /);
    const rolledBack = await cli('rollback', root, '--state', fx.stateDir, '--to', '1');
    expect(rolledBack.code, rolledBack.err).toBe(0);
    expect(rolledBack.err).not.toMatch(/test2/);
    const destroyed = await cli('destroy', root, '--state', fx.stateDir);
    expect(destroyed.code, destroyed.err).toBe(0);
    expect(fx.logins('test2')).toBe(loginsBefore);
  }, 90_000);

  it('controller: RecoveryFailed names the command and the route; POST …/machines/M/abandon (audited) unblocks it and it converges without the machine', async () => {
    // Start from the models without test2 (the test above), server on test3, clients on test1 and test3.
    writeFileSync(join(fx.work, '.gitignore'), '/.state/\n/.controller/\n/testnet/*\n!/testnet/network.physical.yaml\n');
    const repo = WorkRepo.init(fx.work);
    const first = repo.commit('hello world without test2');
    const token = 'tok-abandon-e2e-0123456789';
    mkdirSync(join(fx.work, '.controller'), { recursive: true });
    writeFileSync(join(fx.work, '.controller', 'token'), `${token}\n`, { mode: 0o600 });
    const config = join(fx.work, '.controller', 'controller.yaml');
    writeFileSync(
      config,
      `stateDir: ${JSON.stringify(fx.stateDir)}
listen: 127.0.0.1:${PORT}
apiToken: { file: ${JSON.stringify(join(fx.work, '.controller', 'token'))} }
deployments:
  - name: hello-world
    repository: { url: ${JSON.stringify(fx.work)}, branch: main }
    path: strata.testnet.yaml
    interval: 10m
    probeInterval: 10m
    connectTimeout: 2s
    ssh: { allowedFiles: [${JSON.stringify(fx.net.dir)}] }
`,
    );
    controller = spawnStrata(['controller', '--config', config], { cwd: fx.work });
    const api = new ControllerApi(`http://127.0.0.1:${PORT}`, token);
    await until(async () => (await api.status('hello-world')).lastAppliedRevision === first, 30_000, 'the controller to deploy the first commit');

    // The server moves to test1; test1 dies while the server starts there.
    edit('distribution.yaml', 'hello-world-server: test3', 'hello-world-server: test1');
    repo.commit('move the server to test1');
    await until(async () => (await api.status('hello-world')).plan?.steps.some((s) => s.action === 'activate' && s.item === 'hello-world-server' && s.state === 'running'), 30_000, 'the server to start on test1', 10);
    await stop('test1');
    const failing = await until(
      async () => {
        const s = await api.status('hello-world');
        return condition(s, 'Ready')?.reason === 'RecoveryFailed' ? s : undefined;
      },
      40_000,
      'recovery to fail on test1',
      100,
    );
    expect(condition(failing, 'Ready')!.message).toMatch(/strata abandon-machine test1 --deployment hello-world --reason TEXT --yes/);
    expect(condition(failing, 'Ready')!.message).toMatch(/POST \/api\/deployments\/hello-world\/machines\/test1\/abandon/);

    // The models without test1, then the machine abandoned through the API.
    edit('distribution.yaml', 'hello-world-server: test1', 'hello-world-server: test3');
    edit('distribution.yaml', 'hello-world-client: [test1, test3]', 'hello-world-client: [test3]');
    dropMachine('test1');
    const last = repo.commit('without test1');
    const path = '/api/deployments/hello-world/machines/test1/abandon';
    expect((await api.request('POST', path, { token: null, body: '{"reason":"x"}' })).status).toBe(401);
    expect((await api.request('POST', path, { body: '{"by":"ops"}' })).status).toBe(400);
    expect((await api.request('POST', '/api/deployments/hello-world/machines/test9/abandon', { body: '{"reason":"typo"}' })).status).toBe(400);
    expect((await api.request('POST', path, { body: JSON.stringify({ reason: 'x', by: 'ops\u0007' }) })).status).toBe(400);
    // Through the CLI's --controller (the same route): without --yes nothing is sent.
    const url = `http://127.0.0.1:${PORT}`;
    const tokenFile = join(fx.work, '.controller', 'token');
    expect((await cli('abandon-machine', 'test1', '--controller', url, '--deployment', 'hello-world', '--reason', 'host decommissioned', '--token-file', tokenFile)).code).toBe(2);
    const r = await cli('abandon-machine', 'test1', '--controller', url, '--deployment', 'hello-world', '--reason', 'host decommissioned', '--yes', '--token-file', tokenFile);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/abandoned test1 of hello-world \(by \S+@\S+ \(api 127\.0\.0\.1\): host decommissioned\)/);

    const converged = await until(
      async () => {
        const s = await api.status('hello-world');
        return s.lastAppliedRevision === last && condition(s, 'Ready')?.status === 'True' ? s : undefined;
      },
      40_000,
      'the controller to converge without test1',
      100,
    );
    expect(converged.consecutiveFailures).toBe(0);
    const history = await api.history('hello-world');
    expect(history.generations.some((g) => (g as { abandoned?: { machine: string; by: string } }).abandoned?.machine === 'test1')).toBe(true);
    expect(jsonLines(controller.stdout()).some((l) => l.audit?.machine === 'test1' && l.audit?.reason === 'host decommissioned')).toBe(true);
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
    controller.child.kill('SIGTERM');
    expect((await controller.exited).code).toBe(0);
  }, 120_000);
});

// ---------------------------------------------------------------- a full disk

const STRATA = '/var/lib/strata';
/** The deployment's own directory on a machine, where its lock lives. */
const DEPLOYMENT_DIR = `${STRATA}/deployments/hello-world`;

/** Runs a shell script inside a test host's mount namespace (where its runtime root is). */
function inHost(machine: string, script: string): string {
  return execFileSync('/usr/bin/nsenter', [`--target=${fx.host(machine).pid}`, '--mount', '--', '/bin/sh', '-c', script], { encoding: 'utf8' });
}

/** Fills the host's runtime root (a small tmpfs) to ENOSPC: every block, then every inode. */
function fillDisk(machine: string): void {
  inHost(machine, `dd if=/dev/zero of=${STRATA}/fill bs=64k 2>/dev/null; i=0; while true 2>/dev/null >${STRATA}/fill.$i; do i=$((i + 1)); done; exit 0`);
  const [blocks, inodes] = [inHost(machine, `df -Pk ${STRATA} | awk 'NR == 2 { print $4 }'`).trim(), inHost(machine, `df -Pi ${STRATA} | awk 'NR == 2 { print $4 }'`).trim()];
  expect(`${blocks} KiB, ${inodes} inodes free`).toBe('0 KiB, 0 inodes free');
}
const freeDisk = (machine: string) => inHost(machine, `rm -f ${STRATA}/fill ${STRATA}/fill.*`);
/** What the runtime root holds that has to do with locks. */
const lockEntries = (machine: string) => inHost(machine, `ls -a ${DEPLOYMENT_DIR}`).split('\n').filter((f) => f.startsWith('lock'));

function runtimeOf(machine: string): ShellMachineRuntime {
  const m = stateStore(contextFor({ stateDir: fx.stateDir })).current('hello-world')!.manifest.machines[machine]!;
  return openRuntime(m, 'hello-world', { stateDir: fx.stateDir });
}

describe('a full disk', () => {
  // test2's runtime root is an 8 MiB tmpfs with 400 inodes, mounted before the first apply.
  beforeAll(() => setUp({ before: async () => void inHost('test2', `mount -t tmpfs -o size=8m,nr_inodes=400,mode=0755 strata-small ${STRATA}`) }));
  afterAll(tearDown);

  it('taking the lock is refused before anything changes and leaves no lock behind; once space is freed the next apply goes through at once', async () => {
    fillDisk('test2');
    edit('services.yaml', 'start: sleep 0.5 && exec node server.js', 'start: sleep 0.4 && exec node server.js');
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/test2: cannot take the lock: strata-runtime: only 0 KiB free on the filesystem of \/var\/lib\/strata\S* \(a transition needs 1024 KiB\): the lock was not taken and nothing was changed/);
    expect(lockEntries('test2')).toEqual([]);
    for (const m of ['test1', 'test3']) expect(existsSync(fx.path(m, `${DEPLOYMENT_DIR}/lock`)), `lock on ${m}`).toBe(false);
    expect(existsSync(join(fx.stateDir, 'deployments', 'hello-world', 'journal.jsonl'))).toBe(false);
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');

    // Behind the free-space check (set to 0 here), a disk too full for the owner record leaves nothing either.
    const rt = runtimeOf('test2');
    try {
      const direct = await rt.target.run(['env', 'STRATA_MIN_FREE_KB=0', 'sh', runtimePath(STRATA), DEPLOYMENT_DIR, 'lock', 'ghost:0badc0ffee00', 'tok1', '42', '60']);
      expect(direct.code).toBe(1);
      expect(direct.stderr).toMatch(/cannot write the lock's owner record under \/var\/lib\/strata\S* \(no space left on the device\?\): the lock was not taken and nothing was changed/);
      expect(lockEntries('test2')).toEqual([]);
    } finally {
      await rt.target.close();
    }

    freeDisk('test2');
    const again = await cli('apply', root, '--state', fx.stateDir);
    expect(again.code, again.err).toBe(0);
    expect(again.err).not.toMatch(/locked by/);
    expect(lockEntries('test2')).toEqual([]);
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
  }, 60_000);

  it('a lock already held is renewed, re-taken (as an undo does) and released on a full disk; another owner is told when it can be broken', async () => {
    const rt = runtimeOf('test2');
    const other = runtimeOf('test2');
    const owner = 'ctl:0123456789ab';
    try {
      await rt.lock({ owner, token: 'tok1', pid: process.pid, leaseMs: 30_000 });
      fillDisk('test2');
      const before = inHost('test2', `cat ${DEPLOYMENT_DIR}/lock/owner`);
      await sleep(1100);
      await rt.renew(owner, 'tok1', 60_000);
      const renewed = inHost('test2', `cat ${DEPLOYMENT_DIR}/lock/owner`);
      expect(renewed).not.toBe(before);
      const [, , , taken, expires] = renewed.trim().split(/\s+/);
      expect(Number(expires) - Math.floor(Date.now() / 1000)).toBeGreaterThan(55);
      expect(taken).toBe(before.split(' ')[3]);
      await rt.lock({ owner, token: 'tok1', pid: process.pid, leaseMs: 60_000 });
      await expect(other.lock({ owner: 'other:ba9876543210', token: 'tok2', pid: 1, leaseMs: 60_000 })).rejects.toThrow(
        /test2 is locked by ctl:0123456789ab \(pid \d+, since \S+, lease expires in \d+s\); it can be broken once the lease has expired, at \S+, if its holder stops renewing it/,
      );
      await rt.unlock(owner, 'tok1');
      expect(lockEntries('test2')).toEqual([]);
    } finally {
      freeDisk('test2');
      await rt.target.close();
      await other.target.close();
    }
  }, 60_000);

  it("an older runtime's ownerless lock says when it can be broken, and is broken 10 s after it was made", async () => {
    inHost('test2', `mkdir ${DEPLOYMENT_DIR}/lock && : > ${DEPLOYMENT_DIR}/lock/owner.tmp`);
    edit('services.yaml', 'start: sleep 0.4 && exec node server.js', 'start: sleep 0.5 && exec node server.js');
    const refused = await cli('apply', root, '--state', fx.stateDir);
    expect(refused.code).toBe(4);
    expect(refused.err).toMatch(/test2 is locked by an unknown owner \(no owner record, made \S+\); it can be broken from \S+ \(in \d+s\)/);
    inHost('test2', `touch -d '-20 seconds' ${DEPLOYMENT_DIR}/lock/owner.tmp ${DEPLOYMENT_DIR}/lock`);
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/broke the lock of - on test2/);
    expect(lockEntries('test2')).toEqual([]);
  }, 60_000);
});

// ---------------------------------------------------------------- a frozen machine

/** SIGSTOPs (or SIGCONTs) every process in a test host's mount namespace: its sshd and all it started. */
function signalHost(machine: string, signal: 'SIGSTOP' | 'SIGCONT'): number {
  const pids = processesInMountNs(new Set([fx.host(machine).mountNs]));
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
  return pids.length;
}

describe('a frozen machine', () => {
  beforeAll(() => setUp());
  afterAll(async () => {
    signalHost('test1', 'SIGCONT');
    await tearDown();
  });

  it("while one machine is frozen mid-transition the others' leases are still renewed (a second owner cannot break them, during the undo too), and --command-timeout covers opening a command on it", async () => {
    /** A second owner trying to take (or break, were its lease expired) a machine's lock. */
    const secondOwnerLock = async (machine: string) => {
      const rt = runtimeOf(machine);
      try {
        await rt.lock({ owner: 'other:ba9876543210', token: 'tok2', pid: 1, leaseMs: 60_000 });
      } finally {
        await rt.target.close();
      }
    };
    // Moving the server touches all three machines; test1 (a client's) freezes once its client is stopped.
    edit('distribution.yaml', 'hello-world-server: test2', 'hello-world-server: test3');
    const a = spawnStrata(['apply', root, '--state', fx.stateDir, '--lock-lease', '2', '--command-timeout', '3', '--connect-timeout', '2'], { cwd: fx.work });
    expect(await a.waitFor((l) => /✓ \d+\. deactivate hello-world-client on test1/.test(l)), a.stderr()).toBe(true);
    const frozenAt = Date.now() - a.t0;
    expect(signalHost('test1', 'SIGSTOP')).toBeGreaterThan(0);
    let thawedAt = 0;
    try {
      // Past several leases of 2 s: a second owner finds the healthy machines still locked.
      await sleep(5000);
      // (Asked directly of the healthy machines: a whole second apply would stop at the frozen one first.)
      for (const m of ['test2', 'test3']) {
        await expect(secondOwnerLock(m), m).rejects.toThrow(/is locked by \S+ \(pid \d+, since \S+, lease expires in [0-2]s\)/);
      }
      expect(a.done()).toBe(false);
      await sleep(2000);
      // The undo waits for test1; the others stay locked meanwhile.
      for (const m of ['test2', 'test3']) await expect(secondOwnerLock(m), m).rejects.toThrow(/is locked by/);
      // Frozen for more than four leases in all, still held.
      await sleep(2500);
      for (const m of ['test2', 'test3']) await expect(secondOwnerLock(m), m).rejects.toThrow(/is locked by/);
      // The step on test1 failed within its 3 s (plus the steps before it), while test1 was still frozen.
      const failed = a.lines.find((l) => /✗ \d+\. activate hello-world-client on test1 failed/.test(l.text));
      expect(failed, a.stderr()).toBeDefined();
      expect(failed!.at - frozenAt).toBeLessThan(7000);
    } finally {
      signalHost('test1', 'SIGCONT');
      thawedAt = Date.now() - a.t0;
    }
    const exit = await a.exited;
    expect(exit.code, a.stderr()).toBe(1);
    const err = a.stderr();
    expect(err).toMatch(/command on test1 did not finish within 3s \(the machine did not open a channel for it\)/);
    expect(err).not.toMatch(/lost the lock/);
    expect(err).toMatch(/rolled back \d+ completed steps?; the previous generation is running/);
    expect(thawedAt).toBeGreaterThan(frozenAt + 8000);
    // Rolled back: the server runs on test2, both clients answer, nothing is locked.
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
    for (const m of ['test1', 'test3']) expect(await ask(addr(m), 5001), `client on ${m}`).toBe('Hello world!\n');
    for (const m of MACHINES) expect(existsSync(fx.path(m, `${DEPLOYMENT_DIR}/lock`)), `lock on ${m}`).toBe(false);
  }, 60_000);
});
