import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerApi, until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';

// A real controller process (port 18481): a deployment name in a route is only ever looked up
// among the configured deployments, never turned into a path in the state directory.
const REPO_ROOT = new URL('../..', import.meta.url).pathname;
const LISTEN = '127.0.0.1:18481';
const TOKEN = 'names-test-token-0123456789';
let base: string;
let stateDir: string;
let child: ChildProcess | undefined;
let exited: Promise<unknown>;
let api: ControllerApi;

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-controller-names-'));
  stateDir = join(base, 'state');
  // The repository's models are not valid (there are none): the deployment stalls, the API serves.
  const work = WorkRepo.init(join(base, 'repo'));
  work.write({ 'README.md': 'no models here\n' });
  work.commit('nothing to deploy');
  writeFileSync(join(base, 'api-token'), `${TOKEN}\n`, { mode: 0o600 });
  // A "secret" outside the state directory that a traversal would reach: deployments/../../secret.
  writeFileSync(join(base, 'secret'), 'do not serve\n');
  const config = join(base, 'controller.yaml');
  writeFileSync(
    config,
    `stateDir: ${JSON.stringify(stateDir)}\nlisten: ${LISTEN}\napiToken: { file: ${JSON.stringify(join(base, 'api-token'))} }\nlogLevel: warn\ndeployments:\n  - name: names\n    repository: { url: ${JSON.stringify(work.dir)}, interval: 10m }\n    interval: 10m\n`,
  );
  child = spawn(process.execPath, [join(REPO_ROOT, 'bin/strata.js'), 'controller', '--config', config], { cwd: base, stdio: ['ignore', 'ignore', 'ignore'] });
  exited = new Promise((resolve) => child!.on('exit', resolve));
  api = new ControllerApi(`http://${LISTEN}`, TOKEN);
  await until(async () => (await api.request('GET', '/healthz')).status === 200, 30_000, 'the controller to answer /healthz');
});

afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('deployment names in controller routes', () => {
  it('answers 404 (or 400) for a name that is not a configured deployment, reads and writes nothing for it', async () => {
    const names = ['..%2F..%2Fsecret', 'names%2F..%2Fnames', '%2Fetc%2Fpasswd', '..%2F', '%00', 'a%0Ab', 'constructor', '__proto__', 'toString', 'x'.repeat(200)];
    for (const name of names) {
      for (const [method, path] of [
        ['GET', `/api/deployments/${name}`],
        ['GET', `/api/deployments/${name}/history`],
        ['POST', `/api/deployments/${name}/sync`],
        ['POST', `/api/deployments/${name}/rollback`],
        ['POST', `/webhooks/${name}`],
      ] as const) {
        const r = await api.request(method, path, method === 'POST' ? { body: '{}' } : {});
        expect([400, 404], `${method} ${path}: ${r.status} ${r.text}`).toContain(r.status);
        expect(r.text).not.toContain('do not serve');
      }
    }
    // The configured deployment answers; the process is alive; only its own directory exists.
    expect((await api.request('GET', '/api/deployments/names/history')).status).toBe(200);
    expect((await api.request('GET', '/healthz')).status).toBe(200);
    expect(child!.exitCode).toBeNull();
    const deployments = join(stateDir, 'deployments');
    expect(existsSync(deployments) ? readdirSync(deployments).filter((d) => d !== 'names') : []).toEqual([]);
  });
});
