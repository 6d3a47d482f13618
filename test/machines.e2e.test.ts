import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './support/cli.ts';
import { condition, ControllerApi, jsonLines, until } from './support/controller.ts';
import { WorkRepo } from './support/gitServer.ts';
import { ask } from './support/net.ts';
import { startHostSshd, stopHostSshd } from './support/sshd.ts';
import { spawnStrata, type StrataProcess } from './support/strataProcess.ts';
import { helloWorldFixture, type Fixture } from './support/testnet.ts';

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
const SERVER_STATE = '/var/lib/strata/state/s.hello-world-server';

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

    const loginsBefore = fx.logins('test2');
    const done = await cli('abandon-machine', 'test2', root, '--state', fx.stateDir, '--reason', 'disk died', '--yes');
    expect(done.code, done.err).toBe(0);
    expect(done.out).toMatch(/abandoned test2 of hello-world \(by \S+@\S+: disk died\)/);
    expect(done.out).toMatch(/recovery \(rolled-back\): rolled back the interrupted transition to generation 2: \d+ of \d+ started steps undone, \d+ lost with abandoned test2/);
    expect(done.out).toMatch(/1 item left the recorded state: generation 2 has no test2/);
    expect(done.out).toMatch(/hello-world-server is restored from .*\.snap .* once the models place it on another machine/);
    expect(existsSync(journal())).toBe(false);
    // The clients on test1 and test3 run again (rolled back); nothing runs the server.
    for (const m of ['test1', 'test3']) expect(existsSync(fx.path(m, '/var/lib/strata/lock')), `lock on ${m}`).toBe(false);
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

    // Rollback and destroy are no longer blocked, and never bring test2 back.
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
    const r = await api.request('POST', path, { body: JSON.stringify({ reason: 'host decommissioned', by: 'ops@example' }) });
    expect(r.status, r.text).toBe(200);
    expect(r.json.message).toMatch(/abandoned test1 of hello-world \(by ops@example \(api 127\.0\.0\.1\): host decommissioned\)/);

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
