import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerApi, condition, copyHelloWorldModels, destroyLocalDeployment, editFile, jsonLines, sleep, until } from '../support/controller.ts';
import { adoptDeployment } from '../../src/api/adopt.ts';
import { stateStore } from '../../src/api/context.ts';
import { loadDeployment } from '../../src/api/load.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { ask } from '../support/net.ts';
import { contextFor } from '../../src/api/services.ts';

// The real controller process (`node bin/strata.js controller`) with two deployments on
// `target: local` machines, each from a local repository whose refs it watches:
//   alpha  hello-world on test1..3 (127.0.45.11-13)
//   beta   one greeter on solo (127.0.45.14)
// beta's generation file is truncated: only beta is marked failed (StateCorrupt, naming the
// file); alpha keeps reconciling, the API answers, the process stays up, through a restart too.

const SUBNET = '127.0.45';
const LISTEN = `${SUBNET}.20:18450`;
const REPO_ROOT = new URL('../..', import.meta.url).pathname;
const apiToken = 'tok-controller-state-e2e';

let base: string;
let stateDir: string;
let alpha: WorkRepo;
let beta: WorkRepo;
let child: ChildProcess | undefined;
/** Every controller process started, so that none outlives the tests. */
const children: ChildProcess[] = [];
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
let stdout = '';
let stderr = '';
let api: ControllerApi;
let config: string;

function startController(): void {
  stdout = '';
  stderr = '';
  child = spawn(process.execPath, [join(REPO_ROOT, 'bin/strata.js'), 'controller', '--config', config], { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  exited = new Promise((resolve) => child!.on('exit', (code, signal) => resolve({ code, signal })));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
}
const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
async function stopController(): Promise<void> {
  if (alive()) {
    process.kill(child!.pid!, 'SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
  }
}
const listening = () => until(async () => (await api.request('GET', '/healthz')).status === 200, 30_000, `the controller to listen (stderr: ${stderr.slice(-500)})`);
const deployed = (name: string, sha: string, ms = 60_000) =>
  until(
    async () => {
      const s = await api.status(name);
      return s.lastAppliedRevision === sha && condition(s, 'Ready')?.status === 'True' ? s : undefined;
    },
    ms,
    `${name} to deploy ${sha.slice(0, 12)}`,
  );
const generationFile = (name: string, n: number) => join(stateDir, 'deployments', name, 'generations', `${n}.json`);

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'strata-controller-state-'));
  stateDir = join(base, 'state');
  alpha = WorkRepo.init(join(base, 'alpha'));
  copyHelloWorldModels(alpha.dir, 'strata.yaml');
  alpha.write({
    'strata.yaml': 'name: alpha\nnetwork: [network.yaml, network.local.yaml]\nservices: services.yaml\ndistribution: distribution.yaml\n',
    'network.local.yaml': `machines:\n${['test1', 'test2', 'test3'].map((m, i) => `  ${m}: { target: local, address: ${SUBNET}.${11 + i} }\n`).join('')}`,
  });
  alpha.commit('hello world on local machines');
  beta = WorkRepo.init(join(base, 'beta'));
  copyHelloWorldModels(beta.dir, 'strata.yaml');
  beta.write({
    'strata.yaml': 'name: beta\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n',
    'network.yaml': `machines:\n  solo: { target: local, address: ${SUBNET}.14 }\n`,
    'services.yaml': 'services:\n  greeter:\n    type: process\n    artifact: services/server\n    start: node server.js\n    env: { GREETING: "beta says hi" }\n    ports: { main: 5000 }\n    ready: { port: main, timeout: 10 }\n',
    'distribution.yaml': 'distribution:\n  greeter: solo\n',
  });
  beta.commit('one greeter');
  writeFileSync(join(base, 'api-token'), `${apiToken}\n`, { mode: 0o600 });
  config = join(base, 'controller.yaml');
  writeFileSync(
    config,
    `stateDir: ${JSON.stringify(stateDir)}
listen: ${LISTEN}
apiToken: { file: ${JSON.stringify(join(base, 'api-token'))} }
logLevel: info
deployments:
${['alpha', 'beta'].map((n) => `  - name: ${n}\n    repository: { url: ${JSON.stringify(join(base, n))}, branch: main }\n    interval: 10m\n    localMachines: true\n`).join('')}`,
  );
  api = new ControllerApi(`http://${LISTEN}`, apiToken);
});

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      process.kill(c.pid!, 'SIGKILL');
      await gone;
    }
  }
  // The services run on this host: stop them by their recorded PIDs (alpha's state may have been
  // removed by the last test: take it back from the machines first).
  if (stateDir && !stateStore(contextFor({ stateDir })).current('alpha')) {
    await adoptDeployment((await loadDeployment(join(alpha.dir, 'strata.yaml'))).manifest, contextFor({ stateDir }), { force: true }).catch((e) => console.error('adopting alpha failed:', e));
  }
  for (const name of ['alpha', 'beta']) await destroyLocalDeployment(stateDir, name).catch((e) => console.error(`destroying ${name} failed:`, e));
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('a damaged state file of one deployment', () => {
  let saved: string;

  it('fails only that deployment; the other keeps reconciling and the API answers', async () => {
    startController();
    await listening();
    await deployed('alpha', alpha.head());
    await deployed('beta', beta.head());
    expect(await ask(`${SUBNET}.14`, 5000)).toBe('beta says hi\n');

    // Truncate beta's generation file, then make beta reconcile: it must fail with StateCorrupt.
    saved = readFileSync(generationFile('beta', 1), 'utf8');
    truncateSync(generationFile('beta', 1), 100);
    expect((await api.post('beta', 'sync')).status).toBe(202);
    const broken = await until(
      async () => {
        const s = await api.status('beta');
        return condition(s, 'Ready')?.reason === 'StateCorrupt' ? s : undefined;
      },
      30_000,
      'beta to be marked StateCorrupt',
    );
    expect(condition(broken, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(broken, 'Ready')!.message).toContain(generationFile('beta', 1));
    expect(condition(broken, 'Ready')!.message).toMatch(/not valid JSON \(truncated or damaged\)/);
    expect(condition(broken, 'Ready')!.message).not.toMatch(/SyntaxError|\n\s+at /);
    // the history of beta answers with the error, not a 500 or a dropped connection
    const history = await api.request('GET', '/api/deployments/beta/history');
    expect(history.status).toBe(409);
    expect(history.json.error.code).toBe('STATE_CORRUPT');

    // alpha keeps following its branch: a new commit is deployed
    const sha = alpha.commit('a new greeting', {
      'services.yaml': editFile(join(alpha.dir, 'services.yaml'), 'start: node server.js\n', 'start: node server.js\n    env: { GREETING: "alpha, still served" }\n'),
    });
    await deployed('alpha', sha);
    expect(await ask(`${SUBNET}.11`, 5001)).toBe('alpha, still served\n');
    expect(alive()).toBe(true);
    expect((await api.request('GET', '/api/deployments')).status).toBe(200);
    // beta's greeter was not touched
    expect(await ask(`${SUBNET}.14`, 5000)).toBe('beta says hi\n');
  });

  it('a restart with the damaged file: the process stays up, beta is StateCorrupt, alpha is Ready; a repaired file is taken up again', async () => {
    await stopController();
    startController();
    await listening();
    const s = await until(
      async () => {
        const b = await api.status('beta');
        return condition(b, 'Ready')?.reason === 'StateCorrupt' ? b : undefined;
      },
      30_000,
      'beta to be StateCorrupt after the restart',
    );
    expect(condition(s, 'Ready')!.message).toContain(generationFile('beta', 1));
    await deployed('alpha', alpha.head());
    await sleep(300);
    expect(alive()).toBe(true);
    expect((await api.request('GET', '/healthz')).status).toBe(200);
    const logged = jsonLines(stdout).find((l) => l.deployment === 'beta' && l.code === 'STATE_CORRUPT');
    expect(logged?.file).toBe(generationFile('beta', 1));

    // Put the file back: the next reconcile reads it and beta is Ready again, without a restart.
    writeFileSync(generationFile('beta', 1), saved);
    expect((await api.post('beta', 'sync')).status).toBe(202);
    await deployed('beta', beta.head(), 30_000);
    await stopController();
  });

  it('lost state: the reconcile refuses (StateUnknown) and changes nothing; POST …/adopt rebuilds it from the machines and the deployment is Ready again', async () => {
    startController();
    await listening();
    await deployed('alpha', alpha.head());
    const before = await api.history('alpha');
    // alpha's recorded state is lost (its machines keep their records: their roots are elsewhere)
    // (Moved away in one rename: the running controller may be writing a file there meanwhile.)
    renameSync(join(stateDir, 'deployments', 'alpha'), join(base, 'alpha-state-lost'));
    expect((await api.post('alpha', 'sync')).status).toBe(202);
    const refused = await until(
      async () => {
        const s = await api.status('alpha');
        return condition(s, 'Ready')?.reason === 'StateUnknown' ? s : undefined;
      },
      30_000,
      'alpha to be refused as StateUnknown',
    );
    const why = condition(refused, 'Ready')!.message;
    expect(why, why).toMatch(/the machines run a generation of alpha that the state directory .* does not know: test1 records generation 1 .*: nothing is recorded here; test2 records generation 2/);
    expect(condition(refused, 'Ready')!.message).toContain('Or rebuild the state from what the machines record: POST /api/deployments/alpha/adopt');
    expect(await ask(`${SUBNET}.11`, 5001)).toBe('alpha, still served\n');

    // The adopt route's body is parsed as hostile input, like every route's (400 naming the field, nothing done).
    for (const [body, said] of [
      ['{"generation": "two"}', /"generation" must be a generation number/],
      ['{"force": "yes"}', /"force" must be true or false/],
      ['{"manifestHash": "../x"}', /"manifestHash" must be a manifest hash/],
      ['{"generation": 2, "extra": 1}', /unknown field "extra"/],
      ['[]', /must be a JSON object/],
      ['{"generation": 2', /not valid JSON/],
    ] as const) {
      const bad = await api.post('alpha', 'adopt', { body });
      expect(bad.status, body).toBe(400);
      expect(bad.json.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(said) });
    }
    expect((await api.request('GET', '/api/deployments/alpha/adopt')).status).toBe(405);
    expect((await api.post('nobody', 'adopt', { body: '{}' })).status).toBe(404);
    expect((await api.post('alpha', 'adopt', { body: '{}', token: null })).status).toBe(401);
    const adopted = await api.post('alpha', 'adopt', { body: '{}' });
    expect(adopted.status, adopted.text).toBe(200);
    expect(adopted.json).toMatchObject({ deployment: 'alpha', generation: 2, partial: false, services: 3 });
    const again = await api.post('alpha', 'adopt', { body: '{}' });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('STATE_EXISTS');

    // Ready again at the same generation, with nothing redeployed
    const ready = await deployed('alpha', alpha.head(), 30_000);
    expect(ready.generation).toBe(2);
    expect(before.generations[0]!.generation).toBe(2);
    const history = await api.history('alpha');
    expect(history.generations.map((g) => g.generation)).toEqual([2]);
    expect(history.generations[0]!.source).toMatch(/^adopted from the machines test1, test2, test3$/);
    expect(await ask(`${SUBNET}.11`, 5001)).toBe('alpha, still served\n');
    expect(alive()).toBe(true);
    await stopController();
  });
});
