import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPath, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';
import { condition, ControllerApi, copyHelloWorldModels, editFile, jsonLines, sleep, until } from '../support/controller.ts';
import { createBareRepo, startGitServer, WorkRepo, type GitServer } from '../support/gitServer.ts';
import { ask } from '../support/net.ts';

// The real CLI (`node bin/strata.js controller`) as a child process, stopped with SIGTERM while
// a transition is in flight: it must finish (or roll back) that transition, leave no machine
// locked and no machine on another generation than the controller, and exit 0.

const SUBNET = '127.0.24';
const ALL = ['test1', 'test2', 'test3'];
const REPO_ROOT = new URL('../..', import.meta.url).pathname;
const WEBHOOK_ENV = 'STRATA_E2E_SIGNALS_WEBHOOK_SECRET';
const webhookSecret = `whs-${randomBytes(12).toString('hex')}`;
const apiToken = `tok-${randomBytes(12).toString('hex')}`;
const gitPassword = `pw-${randomBytes(12).toString('hex')}`;

let base: string;
let stateDir: string;
let net: Testnet | undefined;
let git: GitServer | undefined;
let work: WorkRepo;
let bare: string;
let child: ChildProcess | undefined;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let stdout = '';
let stderr = '';
let api: ControllerApi;

const host = (name: string): TestnetHost => net!.hosts.find((h) => h.name === name)!;
const addr = (name: string) => host(name).address;
const short = (sha: string) => sha.slice(0, 12);
const logLines = () => jsonLines(stdout);
const hook = () => api.webhook('hello-world', '{"ref":"refs/heads/main"}', { authorization: `Bearer ${webhookSecret}` });

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-controller-signals-'));
  stateDir = join(base, 'state');
  net = await testnetUp({ dir: join(base, 'testnet'), machines: ALL, subnet: SUBNET });

  // hello-world whose services take two seconds to come up, so a transition lasts a while.
  work = WorkRepo.init(join(base, 'work'));
  copyHelloWorldModels(work.dir, 'strata.testnet.yaml');
  const services = readFileSync(join(work.dir, 'services.yaml'), 'utf8')
    .replace('start: node server.js', 'start: sleep 2 && exec node server.js')
    .replace('start: node client.js', 'start: sleep 2 && exec node client.js')
    .replaceAll('timeout: 10', 'timeout: 20');
  expect(services.match(/sleep 2 && exec/g)).toHaveLength(2);
  work.write({ 'services.yaml': services, 'testnet/network.physical.yaml': readFileSync(net.physicalNetworkFile, 'utf8') });
  work.commit('slow hello world');

  git = await startGitServer({ root: join(base, 'git'), auth: { username: 'deployer', password: gitPassword } });
  bare = createBareRepo(join(base, 'git', 'deploy.git'));
  work.push(bare);

  writeFileSync(join(base, 'api-token'), `${apiToken}\n`, { mode: 0o600 });
  writeFileSync(join(base, 'git-password'), `${gitPassword}\n`, { mode: 0o600 });
  const config = join(base, 'controller.yaml');
  writeFileSync(
    config,
    `stateDir: ${JSON.stringify(stateDir)}
listen: 127.0.0.1:0
apiToken: { file: ${JSON.stringify(join(base, 'api-token'))} }
logLevel: info
deployments:
  - name: hello-world
    repository:
      url: ${JSON.stringify(git.url('deploy.git'))}
      username: deployer
      password: { file: ${JSON.stringify(join(base, 'git-password'))} }
      interval: 10m
    interval: 10m
    webhook:
      secret: { env: ${WEBHOOK_ENV} }
    ssh: { allowedFiles: [${JSON.stringify(net.dir)}] }
`,
  );

  child = spawn(process.execPath, [join(REPO_ROOT, 'bin/strata.js'), 'controller', '--config', config], {
    cwd: base,
    env: { ...process.env, [WEBHOOK_ENV]: webhookSecret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => child!.on('exit', (code, signal) => resolve({ code, signal })));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = await until(
    () => logLines().find((l) => typeof l.msg === 'string' && l.msg.startsWith('controller listening on ')),
    30_000,
    'the controller to listen',
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nstdout: ${stdout.slice(-1000)}\nstderr: ${stderr.slice(-1000)}`);
  });
  api = new ControllerApi(String(listening.msg).replace('controller listening on ', ''), apiToken);
});

afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
  await git?.stop();
  if (net) await testnetDown(net.dir);
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('strata controller as a process', () => {
  it('on SIGTERM finishes the transition in flight, leaves no machine locked or behind, and exits 0', async () => {
    const first = work.head();
    const s1 = await until(
      async () => {
        const s = await api.status('hello-world');
        return s.lastAppliedRevision === first && condition(s, 'Ready')?.status === 'True' ? s : undefined;
      },
      60_000,
      'the first deployment',
    );
    expect(s1.generation).toBe(1);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');

    // A broken commit: the failure's log line says what happens next.
    const broken = work.commit('a port that is a string', {
      'services.yaml': editFile(join(work.dir, 'services.yaml'), 'ports: { main: 5000 }', 'ports: { main: "5000" }'),
    });
    work.push(bare);
    expect((await hook()).status).toBe(202);
    await until(async () => (await api.status('hello-world')).lastFailedRevision === broken, 30_000, 'the broken commit to fail');
    const failure = await until(
      () => logLines().find((l) => l.level === 50 && l.revision === short(broken)),
      5_000,
      'the failure to be logged',
    );
    expect(failure.msg).toMatch(/next (try in|look)/);
    expect(failure.msg).toMatch(/services\.yaml:\d+:\d+/);
    expect(failure).toMatchObject({ deployment: 'hello-world', revision: short(broken), code: 'MODEL_INVALID' });
    expect(failure.reconcileId).toMatch(/^[0-9a-f]{8}$/);

    // Fix it and move the server: a transition of several seconds (each service sleeps 2 s).
    const moved = work.commit('fix the port and move the server to test3', {
      'services.yaml': readFileSync(join(work.dir, 'services.yaml'), 'utf8').replace('ports: { main: "5000" }', 'ports: { main: 5000 }'),
      'distribution.yaml': editFile(join(work.dir, 'distribution.yaml'), 'hello-world-server: test2', 'hello-world-server: test3'),
    });
    work.push(bare);
    expect((await hook()).status).toBe(202);
    const inFlight = await until(
      async () => {
        const s = await api.status('hello-world');
        return s.plan?.steps.some((step) => step.state === 'running') ? s : undefined;
      },
      30_000,
      'a step of the transition to run',
      20,
    );
    expect(inFlight.plan).toMatchObject({ generation: 2, revision: moved });
    expect(condition(inFlight, 'Reconciling')).toMatchObject({ status: 'True', reason: 'Progressing' });

    const signalledAt = Date.now();
    process.kill(child!.pid!, 'SIGTERM');
    // While it finishes, it says it is not ready, and the transition is still going.
    const stopping = await until(async () => (await api.request('GET', '/readyz')).status === 503, 2_000, 'readyz to answer 503');
    expect(stopping).toBe(true);
    expect((await api.request('GET', '/healthz')).status).toBe(200);
    expect((await api.status('hello-world')).plan?.revision).toBe(moved);

    const exit = await Promise.race([exited, sleep(30_000).then(() => 'timeout' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    const stopSeconds = (Date.now() - signalledAt) / 1000;
    expect(stopSeconds).toBeLessThan(30);
    expect(stderr).toBe('');

    // The log: finishing the work in flight, the transition's end, then stopped.
    const lines = logLines();
    const msgs = lines.map((l) => String(l.msg));
    const finishing = msgs.indexOf('SIGTERM: finishing the work in flight, then exiting');
    const stopped = msgs.indexOf('controller stopped');
    expect(finishing).toBeGreaterThan(-1);
    expect(stopped).toBeGreaterThan(finishing);
    expect(stopped).toBe(msgs.length - 1);
    const ended = msgs.findIndex((m, i) => i > finishing && (m.startsWith(`deployed commit ${short(moved)}`) || /rolling back|reconcile failed/.test(m)));
    expect(ended).toBeGreaterThan(finishing);
    expect(ended).toBeLessThan(stopped);

    // Every line of the transition's reconcile carries its id, the deployment and the revision.
    const applying = lines.find((l) => String(l.msg).startsWith(`applying commit ${short(moved)}`));
    expect(applying).toBeDefined();
    const reconcile = lines.filter((l) => l.reconcileId === applying!.reconcileId);
    expect(reconcile.length).toBeGreaterThanOrEqual(2);
    for (const l of reconcile) expect(l).toMatchObject({ deployment: 'hello-world', revision: short(moved), service: 'strata-controller' });
    expect(new Set(lines.filter((l) => l.reconcileId).map((l) => l.reconcileId)).size).toBeGreaterThanOrEqual(3);
    for (const l of lines) expect(JSON.stringify(l)).not.toMatch(new RegExp(`${webhookSecret}|${apiToken}|${gitPassword}`));

    // Never half-way: no machine is locked, and each records the controller's generation.
    const current = readFileSync(join(stateDir, 'deployments', 'hello-world', 'current'), 'utf8').trim();
    for (const m of ALL) {
      expect(existsSync(hostPath(host(m), '/var/lib/strata/deployments/hello-world/lock')), `lock on ${m}`).toBe(false);
      expect(readFileSync(hostPath(host(m), '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim(), `generation on ${m}`).toBe(current);
    }
    expect(existsSync(join(stateDir, 'deployments', 'hello-world', 'journal.jsonl'))).toBe(false);
    const record = JSON.parse(readFileSync(join(stateDir, 'deployments', 'hello-world', 'generations', `${current}.json`), 'utf8'));
    if (current === '2') {
      // Finished: the new generation runs the moved server.
      expect(record.commit.sha).toBe(moved);
      expect(msgs[ended]).toMatch(/^deployed commit/);
      expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
      await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    } else {
      // Rolled back: generation 1 still serves.
      expect(current).toBe('1');
      expect(record.commit.sha).toBe(first);
      expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
      await expect(ask(addr('test3'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    }
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
  }, 150_000);
});
