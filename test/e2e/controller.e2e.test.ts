import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/controller.ts';
import { createApiServer, listen } from '../../src/controller/httpApi.ts';
import { parseControllerConfig } from '../../src/controller/loadConfig.ts';
import { gitSourceFor } from '../../src/controller/gitSource.ts';
import type { DeploymentStatus } from '../../src/controller/status.ts';
import { hostPath, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import {
  condition,
  ControllerApi,
  copyHelloWorldModels,
  destroyLocalDeployment,
  editFile,
  hmacHex,
  metricSeries,
  metricValue,
  sleep,
  until,
} from '../support/controller.ts';
import { createBareRepo, startGitServer, WorkRepo, type GitServer } from '../support/gitServer.ts';
import { ask } from '../support/net.ts';

// The controller in this process, keeping three deployments equal to their Git branches:
//   hello-world  the hello-world example on real sshd test hosts, from an HTTP Git server with
//                basic auth; driven by webhooks and the API (its intervals are 10 minutes, so
//                nothing happens unless the test asks for it)
//   hello-local  hello-world on `target: local` machines (127.0.25.1-3), from a local repository
//                with a working tree; its refs are watched
//   hello-ssh    a file service on a local machine, from a bare repository on test host test1
//                reached over SSH (git-upload-pack)

const SUBNET = '127.0.24';
const LOCAL_SUBNET = '127.0.25';
const PASSWORD_ENV = 'STRATA_E2E_CONTROLLER_GIT_PASSWORD';
const WEBHOOK_ENV = 'STRATA_E2E_CONTROLLER_WEBHOOK_SECRET';
const GIT_USER = 'deployer';
const gitPassword = `pw-${randomBytes(12).toString('hex')}`;
const webhookSecret = `whs-${randomBytes(12).toString('hex')}`;
const apiToken = `tok-${randomBytes(12).toString('hex')}`;
const ALL = ['test1', 'test2', 'test3'];

let base: string;
let stateDir: string;
let net: Testnet | undefined;
let git: GitServer | undefined;
let work: WorkRepo;
/** The bare repository the HTTP server serves, pushed to by its path (a push over HTTP would
 * block this process's event loop, which serves it). */
let bare: string;
let sshBare: string;
let localRepo: WorkRepo;
let sshFiles: string;
let controller: Controller | undefined;
let server: Server | undefined;
let api: ControllerApi;
const logText: string[] = [];
let log: Logger;

const host = (name: string): TestnetHost => {
  const h = net!.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no test host ${name}`);
  return h;
};
const addr = (name: string) => host(name).address;
const logs = () => logText.join('');
const short = (sha: string) => sha.slice(0, 12);
const bearer = { authorization: `Bearer ${webhookSecret}` };

/** Writes files into the deployment repository, commits and pushes to the HTTP remote. */
function pushCommit(message: string, files: Record<string, string>): string {
  const sha = work.commit(message, files);
  work.push(bare);
  return sha;
}
const workFile = (rel: string) => join(work.dir, rel);

const status = (name = 'hello-world') => api.status(name);
const metrics = () => api.metrics();

/** Waits for the deployment to have reconciled after `since` (an earlier lastReconcileAt). */
async function reconciledAfter(name: string, since: string | undefined, timeoutMs = 30_000): Promise<DeploymentStatus> {
  return until(
    async () => {
      const s = await status(name);
      return s.lastReconcileAt !== since && s.plan === undefined ? s : undefined;
    },
    timeoutMs,
    `a reconcile of ${name} after ${since}`,
  );
}

async function deployed(name: string, sha: string, timeoutMs = 45_000, extra: (s: DeploymentStatus) => boolean = () => true): Promise<DeploymentStatus> {
  return until(
    async () => {
      const s = await status(name);
      return s.lastAppliedRevision === sha && condition(s, 'Ready')?.status === 'True' && s.plan === undefined && extra(s) ? s : undefined;
    },
    timeoutMs,
    `${name} to run ${short(sha)}`,
  );
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-controller-e2e-'));
  stateDir = join(base, 'state');
  net = await testnetUp({ dir: join(base, 'testnet'), machines: ALL, subnet: SUBNET });

  // The deployment repository: hello-world on the testnet, plus the SSH variant's models.
  work = WorkRepo.init(join(base, 'work'));
  copyHelloWorldModels(work.dir, 'strata.testnet.yaml');
  sshFiles = join(base, 'ssh-files');
  work.write({
    'testnet/network.physical.yaml': readFileSync(net.physicalNetworkFile, 'utf8'),
    'strata.ssh.yaml': 'name: hello-ssh\nnetwork: network.ssh.yaml\nservices: services.ssh.yaml\ndistribution: distribution.ssh.yaml\n',
    'network.ssh.yaml': `machines:\n  filebox:\n    target: local\n    address: 127.0.26.1\n    allowedPaths: [${JSON.stringify(sshFiles)}]\n`,
    'services.ssh.yaml': `services:\n  greeter-files:\n    type: file\n    artifact: services/server\n    path: ${JSON.stringify(join(sshFiles, 'server'))}\n`,
    'distribution.ssh.yaml': 'distribution:\n  greeter-files: filebox\n',
  });
  work.commit('hello world on the testnet');

  git = await startGitServer({ root: join(base, 'git'), auth: { username: GIT_USER, password: gitPassword } });
  bare = createBareRepo(join(base, 'git', 'deploy.git'));
  work.push(bare);

  // The same repository in a bare repository on test host test1, reached over SSH.
  sshBare = createBareRepo(hostPath(host('test1'), '/root/repos/deploy.git'));
  work.push(sshBare);

  // A local repository with a working tree: hello-world on local machines 127.0.25.1-3.
  localRepo = WorkRepo.init(join(base, 'local-repo'));
  copyHelloWorldModels(localRepo.dir, 'strata.yaml');
  localRepo.write({
    'strata.yaml': 'name: hello-local\nnetwork: [network.yaml, network.local.yaml]\nservices: services.yaml\ndistribution: distribution.yaml\n',
    'network.local.yaml': `machines:\n${ALL.map((m, i) => `  ${m}: { target: local, address: ${LOCAL_SUBNET}.${i + 1} }\n`).join('')}`,
  });
  localRepo.commit('hello world on local machines');

  process.env[PASSWORD_ENV] = gitPassword;
  process.env[WEBHOOK_ENV] = webhookSecret;
  const configText = `stateDir: ${JSON.stringify(stateDir)}
listen: 127.0.0.1:0
logLevel: debug
deployments:
  - name: hello-world
    repository:
      url: ${JSON.stringify(git.url('deploy.git'))}
      branch: main
      interval: 10m
      username: ${GIT_USER}
      password: { env: ${PASSWORD_ENV} }
    interval: 10m
    webhook:
      secret: { env: ${WEBHOOK_ENV} }
    ssh: { allowedFiles: [${JSON.stringify(net.dir)}] }
  - name: hello-local
    repository:
      url: ${JSON.stringify(localRepo.dir)}
      branch: main
    interval: 10m
    localMachines: true
  - name: hello-ssh
    repository:
      url: ${JSON.stringify(`ssh://root@${addr('test1')}/root/repos/deploy.git`)}
      branch: main
      interval: 10m
      hostKey: ${JSON.stringify(host('test1').hostKey)}
      sshKey: { file: ${JSON.stringify(net.identityFile)} }
    path: strata.ssh.yaml
    interval: 10m
    localMachines: true
`;
  const config = parseControllerConfig(join(base, 'controller.yaml'), configText);
  log = pino(
    { level: 'debug', base: { service: 'strata-controller' } },
    { write: (s: string) => void logText.push(s) },
  );
  controller = new Controller(config, { log, sourceFor: gitSourceFor });
  server = createApiServer(controller, { log, apiToken });
  const address = await listen(server, config.listen);
  api = new ControllerApi(`http://${address.host}:${address.port}`, apiToken);
  controller.start();
});

afterAll(async () => {
  await controller?.stop();
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((r) => server!.close(() => r()));
  }
  // hello-local's services run on this host: stop them by their recorded PIDs.
  if (stateDir) await destroyLocalDeployment(stateDir, 'hello-local').catch((e) => console.error('destroying hello-local failed:', e));
  await git?.stop();
  if (net) await testnetDown(net.dir);
  delete process.env[PASSWORD_ENV];
  delete process.env[WEBHOOK_ENV];
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('controller on real sshd hosts and a real Git server', () => {
  let first: string; // server on test2
  let moved: string; // server on test3 (generation 2)
  let broken: string;
  let fixed: string;
  let suspendedChange: string; // server back on test2, pushed while suspended

  it('deploys the pushed commit and records it in the generation; a pushed move is deployed after a webhook', async () => {
    first = work.head();
    const s = await deployed('hello-world', first, 60_000);
    expect(s.generation).toBe(1);
    expect(s.lastAttemptedRevision).toBe(first);
    expect(condition(s, 'Stalled')?.status).toBe('False');
    expect(s.repository).toBe(git!.url('deploy.git'));
    expect(s.repository).not.toContain(gitPassword);

    const h = await api.history('hello-world');
    expect(h.generations).toHaveLength(1);
    expect(h.generations[0]).toMatchObject({ generation: 1, current: true, machines: 3, services: 3 });
    expect(h.generations[0]!.commit).toMatchObject({ sha: first, author: { name: 'Ada Tester', email: 'ada@example.test' } });
    expect(h.generations[0]!.commit!.message.trim()).toBe('hello world on the testnet');

    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
    for (const m of ALL) expect(readFileSync(hostPath(host(m), '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim()).toBe('1');

    // Move the server. Nothing polls (10 minute intervals): only the webhook can explain it.
    moved = pushCommit('move the server to test3', {
      'distribution.yaml': editFile(workFile('distribution.yaml'), 'hello-world-server: test2', 'hello-world-server: test3'),
    });
    await sleep(300);
    expect((await status()).lastAppliedRevision).toBe(first);
    const hook = await api.webhook('hello-world', '{"ref":"refs/heads/main"}', bearer);
    expect(hook.status).toBe(202);
    const after = await deployed('hello-world', moved);
    expect(after.generation).toBe(2);
    expect((await api.history('hello-world')).generations.map((g) => [g.generation, g.current, g.commit?.sha])).toEqual([
      [2, true, moved],
      [1, false, first],
    ]);
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
    await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
  });

  it('records a broken model commit as failed without retrying it in a loop; the previous generation keeps serving; the next good commit deploys', async () => {
    const before = await status();
    const goodServices = readFileSync(workFile('services.yaml'), 'utf8');
    broken = pushCommit('break the client port', {
      'services.yaml': editFile(workFile('services.yaml'), 'ports: { main: 5001 }', 'ports: { main: "five thousand and one" }'),
    });
    const body = '{"ref":"refs/heads/main"}';
    expect((await api.webhook('hello-world', body, { 'x-strata-signature': `sha256=${hmacHex(webhookSecret, body)}` })).status).toBe(202);
    const s = await until(async () => {
      const x = await status();
      return x.lastFailedRevision === broken ? x : undefined;
    }, 30_000, 'the broken commit to be recorded as failed');

    expect(condition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ModelInvalid' });
    expect(condition(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'ModelInvalid' });
    expect(condition(s, 'Reconciling')).toMatchObject({ status: 'False', reason: 'ModelInvalid' });
    expect(s.lastFailure).toMatchObject({ revision: broken, reason: 'ModelInvalid', terminal: true });
    expect(s.lastFailure!.message).toMatch(/services\.yaml:\d+:\d+: services\.hello-world-client\.ports\.main: expected number/);
    expect(condition(s, 'Ready')!.message).toContain(short(broken));
    expect(condition(s, 'Ready')!.message).toContain('generation 2 keeps running');
    expect(s.lastAttemptedRevision).toBe(broken);
    expect(s.lastAppliedRevision).toBe(moved);
    expect(s.generation).toBe(before.generation);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');

    // Two more reconciles (one after the other, so they cannot merge in the queue): each sees
    // the same broken commit and stops before loading its models.
    const stalledBefore = metricValue(await metrics(), 'strata_reconcile_total', { deployment: 'hello-world', result: 'stalled' });
    let since = s.lastReconcileAt;
    for (let i = 0; i < 2; i++) {
      expect((await api.webhook('hello-world', body, bearer)).status).toBe(202);
      since = (await reconciledAfter('hello-world', since)).lastReconcileAt;
    }
    const m = await metrics();
    expect(metricValue(m, 'strata_reconcile_total', { deployment: 'hello-world', result: 'stalled' })).toBe(stalledBefore + 2);
    const again = await status();
    expect(again.generation).toBe(2);
    expect(again.lastAppliedRevision).toBe(moved);
    expect(condition(again, 'Stalled')?.status).toBe('True');
    expect((await api.history('hello-world')).generations).toHaveLength(2);
    expect(logs()).not.toContain(`applying commit ${short(broken)}`);
    expect(logs().split(`commit ${short(broken)} failed before (ModelInvalid)`)).toHaveLength(3);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');

    // The fix: the models equal generation 2's again, so nothing needs to change on the machines.
    fixed = pushCommit('fix the client port', { 'services.yaml': goodServices });
    expect((await api.webhook('hello-world', body, bearer)).status).toBe(202);
    const ok = await deployed('hello-world', fixed);
    expect(condition(ok, 'Stalled')).toMatchObject({ status: 'False', reason: 'Succeeded' });
    expect(condition(ok, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Succeeded' });
    expect(ok.generation).toBe(2);
    expect(ok.consecutiveFailures).toBe(0);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
  });

  it('accepts signed webhooks from GitHub, GitLab and Gitea, and refuses bad ones without queueing anything', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: fixed });
    const bad: Record<string, string>[] = [
      { 'x-hub-signature-256': `sha256=${hmacHex('not the secret', body)}` },
      { 'x-hub-signature-256': hmacHex(webhookSecret, body) }, // right HMAC, without "sha256="
      { 'x-gitea-signature': hmacHex(webhookSecret, `${body} `) }, // signed another body
      { 'x-gitlab-token': `${webhookSecret}x` },
      { authorization: 'Bearer not-the-secret' },
      { 'x-strata-signature': `sha256=${hmacHex('nope', body)}` },
      {},
    ];
    // Let any reconcile queued by the previous test (a re-run after a webhook, a drift probe) finish.
    let before = await status();
    for (let settled = false; !settled; ) {
      await sleep(700);
      const again = await status();
      settled = again.lastReconcileAt === before.lastReconcileAt && again.plan === undefined;
      before = again;
    }
    const totalBefore = metricSeries(await metrics(), 'strata_reconcile_total');
    for (const headers of bad) {
      const r = await api.webhook('hello-world', body, headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.text).not.toContain(webhookSecret);
    }
    await sleep(500);
    const after = await status();
    expect(after.lastReconcileAt).toBe(before.lastReconcileAt);
    expect(metricSeries(await metrics(), 'strata_reconcile_total')).toEqual(totalBefore);
    expect(logs()).toMatch(/refused a webhook: github webhook: signature or token does not match/);

    const good: [string, Record<string, string>][] = [
      ['github', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmacHex(webhookSecret, body)}` }],
      ['gitlab', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': webhookSecret }],
      ['gitea', { 'x-gitea-event': 'push', 'x-gitea-signature': hmacHex(webhookSecret, body) }],
    ];
    let since = before.lastReconcileAt;
    for (const [provider, headers] of good) {
      const r = await api.webhook('hello-world', body, headers);
      expect(r.status, provider).toBe(202);
      expect(r.text).not.toContain(webhookSecret);
      const s = await reconciledAfter('hello-world', since);
      expect(s.lastAppliedRevision).toBe(fixed);
      since = s.lastReconcileAt;
      expect(logs()).toContain(`queued: ${provider} push to refs/heads/main`);
    }
    expect(metricValue(await metrics(), 'strata_reconcile_total', { deployment: 'hello-world', result: 'unchanged' })).toBe(
      totalBefore.find((x) => x.labels.deployment === 'hello-world' && x.labels.result === 'unchanged')!.value + 3,
    );

    // Unknown deployments are 404, for webhooks and the API alike.
    expect((await api.webhook('no-such-deployment', body, bearer)).status).toBe(404);
    expect((await api.request('GET', '/api/deployments/no-such-deployment')).status).toBe(404);
    // The local deployment has no webhook: nothing to verify against.
    expect((await api.webhook('hello-local', body, bearer)).status).toBe(404);

    // No secret ever reached the log.
    expect(logs()).not.toContain(webhookSecret);
    expect(logs()).not.toContain(gitPassword);
    expect(logs()).not.toContain(apiToken);
  });

  it('suspend stops following the branch; API calls without the token change nothing; resume applies the change', async () => {
    const sus = await api.post('hello-world', 'suspend');
    expect(sus.status).toBe(200);
    expect(sus.json).toMatchObject({ suspended: true });
    expect(condition(sus.json, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Suspended' });

    suspendedChange = pushCommit('move the server back to test2', {
      'distribution.yaml': editFile(workFile('distribution.yaml'), 'hello-world-server: test3', 'hello-world-server: test2'),
    });
    const before = await status();
    const suspendedRuns = metricValue(await metrics(), 'strata_reconcile_total', { deployment: 'hello-world', result: 'suspended' });
    expect((await api.webhook('hello-world', '{}', bearer)).status).toBe(202);
    const s = await reconciledAfter('hello-world', before.lastReconcileAt);
    expect(metricValue(await metrics(), 'strata_reconcile_total', { deployment: 'hello-world', result: 'suspended' })).toBe(suspendedRuns + 1);
    expect(s.suspended).toBe(true);
    expect(s.lastAppliedRevision).toBe(fixed);
    expect(s.lastAttemptedRevision).toBe(fixed);
    expect(s.generation).toBe(2);
    expect(condition(s, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
    await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);

    // Without the bearer token, or with a wrong one: 401, and nothing changes.
    const frozen = await status();
    const totals = metricSeries(await metrics(), 'strata_reconcile_total');
    for (const token of [null, 'wrong-token', `${apiToken}x`, apiToken.slice(0, -1)]) {
      for (const action of ['resume', 'sync', 'suspend', 'rollback']) {
        const r = await api.post('hello-world', action, { token, body: action === 'rollback' ? '{}' : undefined });
        expect(r.status, `${action} with ${token}`).toBe(401);
        expect(r.json.error.code).toBe('UNAUTHORIZED');
      }
    }
    await sleep(500);
    expect(await status()).toEqual(frozen);
    expect(metricSeries(await metrics(), 'strata_reconcile_total')).toEqual(totals);
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');

    const res = await api.post('hello-world', 'resume');
    expect(res.status).toBe(202);
    expect(res.json.suspended).toBe(false);
    const resumed = await deployed('hello-world', suspendedChange);
    expect(resumed.generation).toBe(3);
    expect(resumed.suspended).toBe(false);
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
    await expect(ask(addr('test3'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
  });

  it('a commit to a local repository reconciles at once; an uncommitted edit is never deployed', async () => {
    const initial = localRepo.head();
    const s = await deployed('hello-local', initial, 30_000);
    expect(s.generation).toBe(1);
    expect(s.repository).toBe(localRepo.dir);
    expect(await ask(`${LOCAL_SUBNET}.1`, 5001)).toBe('Hello world!\n');
    expect(await ask(`${LOCAL_SUBNET}.2`, 5000)).toBe('Hello world!\n');

    // In the working tree only: move the server. Never committed, so never deployed.
    writeFileSync(join(localRepo.dir, 'distribution.yaml'), editFile(join(localRepo.dir, 'distribution.yaml'), 'hello-world-server: test2', 'hello-world-server: test3'));
    // Committed: a new greeting (only services.yaml is staged).
    writeFileSync(
      join(localRepo.dir, 'services.yaml'),
      editFile(join(localRepo.dir, 'services.yaml'), 'start: node server.js\n', 'start: node server.js\n    env: { GREETING: "Hello from a commit" }\n'),
    );
    const applies = metricValue(await metrics(), 'strata_reconcile_total', { deployment: 'hello-local', result: 'applied' });
    localRepo.git('add', 'services.yaml');
    const committedAt = Date.now();
    localRepo.git('commit', '--quiet', '-m', 'a new greeting');
    const sha = localRepo.head();
    expect(localRepo.git('status', '--porcelain')).toContain('distribution.yaml');
    // The interval is 10 minutes: only the watch on the repository's refs explains this.
    const after = await deployed('hello-local', sha, 3_000);
    expect(Date.now() - committedAt).toBeLessThan(3_000);
    expect(after.generation).toBe(2);
    expect(metricValue(await metrics(), 'strata_reconcile_total', { deployment: 'hello-local', result: 'applied' })).toBe(applies + 1);
    expect(await ask(`${LOCAL_SUBNET}.1`, 5001)).toBe('Hello from a commit\n');
    expect(await ask(`${LOCAL_SUBNET}.2`, 5000)).toBe('Hello from a commit\n');
    await expect(ask(`${LOCAL_SUBNET}.3`, 5000)).rejects.toThrow(/ECONNREFUSED/);

    // Asked again explicitly, the controller still deploys the commit, not the working tree.
    const synced = await api.post('hello-local', 'sync');
    expect(synced.status).toBe(202);
    const again = await reconciledAfter('hello-local', after.lastReconcileAt);
    expect(again.lastAppliedRevision).toBe(sha);
    expect(again.generation).toBe(2);
    await expect(ask(`${LOCAL_SUBNET}.3`, 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(`${LOCAL_SUBNET}.2`, 5000)).toBe('Hello from a commit\n');
    // The working tree is left as it was.
    expect(readFileSync(join(localRepo.dir, 'distribution.yaml'), 'utf8')).toContain('hello-world-server: test3');
    const h = await api.history('hello-local');
    expect(h.generations[0]!.commit?.sha).toBe(sha);
    expect(h.generations[0]!.commit?.message.trim()).toBe('a new greeting');
  });

  it('rolls back through the API to the previous generation and suspends; resume applies the branch head again', async () => {
    const before = await status();
    expect(before.generation).toBe(3);
    const r = await api.post('hello-world', 'rollback', { body: '{}' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ ok: true, generation: 4 });
    expect(r.json.message).toMatch(/rolled back to generation 2/);

    // Generation 2 ran the server on test3.
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
    await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    const s = await status();
    expect(s.suspended).toBe(true);
    expect(s.generation).toBe(4);
    expect(s.plan).toBeUndefined();
    expect(condition(s, 'Ready')).toMatchObject({ status: 'True', reason: 'RolledBack' });
    expect(condition(s, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Suspended' });
    for (const m of ALL) expect(readFileSync(hostPath(host(m), '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim()).toBe('4');

    const h = await api.history('hello-world');
    const second = h.generations.find((g) => g.generation === 2)!.commit!;
    expect(h.generations[0]).toMatchObject({ generation: 4, current: true, rolledBackTo: 2, commit: { sha: second.sha } });
    // What runs now is generation 2's commit, in the status and the metrics alike.
    expect(s.lastAppliedRevision).toBe(second.sha);
    const applied = metricSeries(await api.metrics(), 'strata_last_applied_revision_info').filter((m) => m.labels.deployment === 'hello-world');
    expect(applied.map((m) => [m.labels.revision, m.labels.generation])).toEqual([[second.sha, '4']]);
    const cliHistory = await cli('history', '--deployment', 'hello-world', '--state', stateDir);
    expect(cliHistory.err).toBe('');
    expect(cliHistory.code).toBe(0);
    expect(cliHistory.out).toMatch(/^hello-world: 4 generations$/m);
    expect(cliHistory.out).toMatch(new RegExp(`^\\*\\s+4\\s.*rollback to generation 2 \\(${short(second.sha)} `, 'm'));
    expect(cliHistory.out).toMatch(new RegExp(`^ \\s+3\\s.*${short(suspendedChange)} Ada Tester: move the server back to test2$`, 'm'));

    // Still suspended: a webhook does not bring the branch head back.
    expect((await api.webhook('hello-world', '{}', bearer)).status).toBe(202);
    const still = await reconciledAfter('hello-world', s.lastReconcileAt);
    expect(still.generation).toBe(4);
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');

    expect((await api.post('hello-world', 'resume')).status).toBe(202);
    const resumed = await deployed('hello-world', suspendedChange, 45_000, (x) => x.generation === 5);
    expect(resumed.suspended).toBe(false);
    expect(condition(resumed, 'Ready')?.reason).toBe('Succeeded');
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
    await expect(ask(addr('test3'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect((await api.history('hello-world')).generations[0]).toMatchObject({ generation: 5, current: true, commit: { sha: suspendedChange } });
  });

  it('deploys from a repository reached over SSH with a pinned host key', async () => {
    const first = readFileSync(join(sshBare, 'refs/heads/main'), 'utf8').trim();
    const s = await deployed('hello-ssh', first, 30_000);
    expect(s.repository).toBe(`ssh://root@${addr('test1')}/root/repos/deploy.git`);
    expect(s.generation).toBe(1);
    const served = readFileSync(new URL('../../examples/hello-world/services/server/server.js', import.meta.url), 'utf8');
    expect(readFileSync(join(sshFiles, 'server', 'server.js'), 'utf8')).toBe(served);

    // A new commit, pushed over the real path of the bare repository on test1, then `sync`.
    const next = work.commit('greeter files elsewhere', {
      'services.ssh.yaml': `services:\n  greeter-files:\n    type: file\n    artifact: services/client\n    path: ${JSON.stringify(join(sshFiles, 'client'))}\n`,
    });
    work.push(sshBare);
    expect((await api.post('hello-ssh', 'sync')).status).toBe(202);
    const after = await deployed('hello-ssh', next, 30_000);
    expect(after.generation).toBe(2);
    expect((await api.history('hello-ssh')).generations[0]!.commit?.sha).toBe(next);
    expect(existsSync(join(sshFiles, 'client', 'client.js'))).toBe(true);
    expect(existsSync(join(sshFiles, 'server', 'server.js'))).toBe(false);
    // The SSH login happened on test1's sshd with the testnet key.
    expect(readFileSync(join(host('test1').dir, 'sshd.log'), 'utf8')).toMatch(/Accepted publickey for root/);
  });

  it('exposes reconcile, transition and revision metrics', async () => {
    const text = await metrics();
    const s = await status();
    expect(s.lastAppliedRevision).toBe(suspendedChange);
    expect(metricValue(text, 'strata_reconcile_total', { deployment: 'hello-world', result: 'applied' })).toBe(4);
    expect(metricValue(text, 'strata_reconcile_total', { deployment: 'hello-world', result: 'rolled-back' })).toBe(1);
    expect(metricValue(text, 'strata_reconcile_total', { deployment: 'hello-world', result: 'stalled' })).toBe(3);
    expect(metricValue(text, 'strata_reconcile_total', { deployment: 'hello-world', result: 'failed' })).toBe(0);
    expect(metricValue(text, 'strata_reconcile_duration_seconds_count', { deployment: 'hello-world', result: 'applied' })).toBe(4);
    expect(metricValue(text, 'strata_reconcile_duration_seconds_sum', { deployment: 'hello-world', result: 'applied' })).toBeGreaterThan(0);
    // Four applied commits and the rollback: five transitions.
    expect(metricValue(text, 'strata_transitions_total', { deployment: 'hello-world', result: 'succeeded' })).toBe(5);
    expect(metricValue(text, 'strata_transitions_total', { deployment: 'hello-local', result: 'succeeded' })).toBe(2);

    const revision = metricSeries(text, 'strata_last_applied_revision_info').filter((x) => x.labels.deployment === 'hello-world');
    expect(revision).toEqual([{ name: 'strata_last_applied_revision_info', labels: { deployment: 'hello-world', revision: suspendedChange, generation: '5' }, value: 1 }]);
    const ssh = metricSeries(text, 'strata_last_applied_revision_info').filter((x) => x.labels.deployment === 'hello-ssh');
    expect(ssh).toHaveLength(1);
    expect(ssh[0]!.labels.generation).toBe('2');

    expect(metricValue(text, 'strata_machines_reachable', { deployment: 'hello-world' })).toBe(3);
    expect(metricValue(text, 'strata_machines', { deployment: 'hello-world' })).toBe(3);
    expect(metricValue(text, 'strata_machines_reachable', { deployment: 'hello-ssh' })).toBe(1);
    expect(metricValue(text, 'strata_deployment_ready', { deployment: 'hello-world' })).toBe(1);
    expect(metricValue(text, 'strata_last_applied_timestamp_seconds', { deployment: 'hello-world' })).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(text).toMatch(/^strata_process_/m);
    expect(text).not.toContain(gitPassword);

    const health = await api.request('GET', '/healthz');
    expect(health.status).toBe(200);
    expect((await api.request('GET', '/readyz')).status).toBe(200);
    const list = await api.request('GET', '/api/deployments');
    expect(list.json.deployments.map((d: DeploymentStatus) => d.name)).toEqual(['hello-world', 'hello-local', 'hello-ssh']);
  });
});
