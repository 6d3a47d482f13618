import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { watch } from 'chokidar';
import pino from 'pino';
import YAML from 'yaml';
import { controllerConfig } from '../../src/controller/config.ts';
import { Controller } from '../../src/controller/controller.ts';
import { createApiServer, listen } from '../../src/controller/httpApi.ts';
import type { RevisionSource } from '../../src/controller/revisionSource.ts';
import { gitSourceFor } from '../../src/controller/gitSource.ts';
import type { DeploymentStatus } from '../../src/controller/status.ts';
import { findGitdir } from '../../src/git/localRepo.ts';
import { GitSource } from '../../src/git/source.ts';
import type { Testnet } from '../../src/testnet/index.ts';
import { createBareRepo, GIT, gitEnv, startGitServer, WorkRepo, type GitServer } from '../../test/support/gitServer.ts';
import { onCleanup } from './cleanup.ts';

/**
 * The fixture of `npm run bench:latency`: the hello-world example in two Git repositories
 * (one served over HTTP by the test Git server, one local and watched), and two in-process
 * controllers sharing one state directory, each following one of them. Only one repository
 * changes in a run, so only that controller has anything to do; the other stays idle (its
 * interval is 10 minutes, and a remote source has no watch).
 */

export const DEPLOYMENT = 'hello-world';
export const ROOT_FILE = 'strata.testnet.yaml';
export const MACHINES = ['test1', 'test2', 'test3'];
/** Where the example puts the server, and its port (services.yaml). */
export const SERVER_MACHINE = 'test2';
export const SERVER_PORT = 5000;
export const CLIENT_PORT = 5001;
export const INTERVAL = '10m';

export type PathKind = 'webhook' | 'watch';

/** What the instrumented source saw, in performance.now() time. */
export interface SourceMark {
  at: number;
  kind: 'watchFired' | 'syncStart' | 'syncEnd' | 'syncFailed' | 'tree' | 'commitInfo';
  commit?: string;
}

export interface ControllerHandle {
  path: PathKind;
  controller: Controller;
  server: Server;
  apiUrl: string;
  marks: SourceMark[];
  /** The controller's log lines at level warn and above (JSON). */
  logLines: string[];
  /** Stops the controller (a transition in flight finishes) and its API server. */
  stop(): Promise<void>;
}

/**
 * Wraps a deployment's source so the benchmark knows when the controller's reconcile started
 * (sync is its first call), when the branch was resolved, when the models were read and when
 * the apply began (commitInfo is called right after a non-empty plan). It changes nothing else.
 */
export function timedSource(inner: RevisionSource, marks: SourceMark[]): RevisionSource {
  const mark = (kind: SourceMark['kind'], commit?: string) => marks.push({ at: performance.now(), kind, ...(commit ? { commit } : {}) });
  const s: RevisionSource = {
    label: inner.label,
    async sync() {
      mark('syncStart');
      try {
        const r = await inner.sync();
        mark('syncEnd', r.commit);
        return r;
      } catch (e) {
        mark('syncFailed');
        throw e;
      }
    },
    tree(commit) {
      mark('tree', commit);
      return inner.tree(commit);
    },
    commitInfo(sha) {
      mark('commitInfo', sha);
      return inner.commitInfo(sha);
    },
  };
  if (inner.watch) {
    const w = inner.watch.bind(inner);
    s.watch = (onChange) =>
      w(() => {
        mark('watchFired');
        onChange();
      });
  }
  return s;
}

/** Starts an in-process controller for one deployment and its API server on 127.0.0.1:0. */
export async function startController(opts: {
  path: PathKind;
  stateDir: string;
  repository: { url: string; interval?: string };
  webhookSecretFile?: string;
  /** Directories whose files the models may name as ssh.identity (the testnet's, holding its key). */
  allowedFiles?: string[];
  /** An experiment: the local source's watch debounce (gitSourceFor leaves GitSource's default, 100 ms). */
  watchDebounceMs?: number;
}): Promise<ControllerHandle> {
  const config = controllerConfig.parse({
    stateDir: opts.stateDir,
    listen: '127.0.0.1:0',
    logLevel: 'warn',
    deployments: [
      {
        name: DEPLOYMENT,
        repository: { url: opts.repository.url, branch: 'main', ...(opts.repository.interval ? { interval: opts.repository.interval } : {}) },
        path: ROOT_FILE,
        interval: INTERVAL,
        ...(opts.webhookSecretFile ? { webhook: { secret: { file: opts.webhookSecretFile } } } : {}),
        ...(opts.allowedFiles ? { ssh: { allowedFiles: opts.allowedFiles } } : {}),
      },
    ],
  });
  const logLines: string[] = [];
  const log = pino({ level: 'warn', base: { service: 'strata-controller', bench: opts.path } }, { write: (line: string) => void logLines.push(line) });
  const marks: SourceMark[] = [];
  // Each controller's Git cache in a directory of its own (both follow "hello-world").
  const controller = new Controller(config, {
    log,
    sourceFor: (d, stateDir) => {
      const cacheStateDir = path.join(stateDir, 'bench-sources', opts.path);
      const inner =
        opts.watchDebounceMs === undefined
          ? gitSourceFor(d, cacheStateDir)
          : new GitSource(d.repository, path.join(cacheStateDir, 'git', d.name), { watchDebounceMs: opts.watchDebounceMs });
      return timedSource(inner, marks);
    },
  });
  const server = createApiServer(controller, { log });
  const address = await listen(server, config.listen);
  let stopped: Promise<void> | undefined;
  const handle: ControllerHandle = {
    path: opts.path,
    controller,
    server,
    apiUrl: `http://${address.host}:${address.port}`,
    marks,
    logLines,
    stop: () =>
      (stopped ??= (async () => {
        await controller.stop();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })()),
  };
  onCleanup(`controller (${opts.path})`, () => handle.stop());
  controller.start();
  return handle;
}

export async function getStatus(apiUrl: string): Promise<DeploymentStatus> {
  const res = await fetch(`${apiUrl}/api/deployments/${DEPLOYMENT}`);
  if (!res.ok) throw new Error(`GET /api/deployments/${DEPLOYMENT}: HTTP ${res.status}`);
  return (await res.json()) as DeploymentStatus;
}

/** Waits until the controller reports `sha` applied and Ready (used for the setup only). */
export async function waitApplied(h: ControllerHandle, sha: string, timeoutMs = 120_000): Promise<DeploymentStatus> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = await getStatus(h.apiUrl);
    const ready = s.conditions.find((c) => c.type === 'Ready');
    if (s.lastAppliedRevision === sha && ready?.status === 'True') return s;
    if (s.lastFailure && s.lastFailure.revision === sha) throw new Error(`the ${h.path} controller failed on ${sha.slice(0, 12)}: ${s.lastFailure.message}`);
    if (performance.now() > deadline) throw new Error(`the ${h.path} controller did not apply ${sha.slice(0, 12)} within ${timeoutMs} ms: ${JSON.stringify(s.conditions)}`);
    await sleep(20);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The git CLI without blocking the event loop (the controller runs in this process). */
export function gitAsync(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(GIT, args, { cwd, env: gitEnv(), encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`git ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/** The example's services.yaml with the server's GREETING set (comments kept). */
export function servicesYaml(text: string, greeting: string): string {
  const doc = YAML.parseDocument(text);
  doc.setIn(['services', 'hello-world-server', 'env'], doc.createNode({ GREETING: greeting }));
  return doc.toString();
}

/**
 * The repository content: the files of examples/hello-world that strata.testnet.yaml uses,
 * the physical network file testnetUp wrote, and the server's GREETING in services.yaml.
 */
export function writeModels(dir: string, testnet: Testnet, greeting: string): void {
  const example = path.resolve(import.meta.dirname, '..', '..', 'examples', 'hello-world');
  for (const f of ['network.yaml', 'distribution.yaml', ROOT_FILE, 'services/server', 'services/client']) {
    cpSync(path.join(example, f), path.join(dir, f), { recursive: true });
  }
  writeFileSync(path.join(dir, 'services.yaml'), servicesYaml(readFileSync(path.join(example, 'services.yaml'), 'utf8'), greeting));
  mkdirSync(path.join(dir, 'testnet'), { recursive: true });
  cpSync(testnet.physicalNetworkFile, path.join(dir, 'testnet', 'network.physical.yaml'));
}

export interface Repositories {
  gitServer: GitServer;
  /** URL of the bare repository on the Git server. */
  remoteUrl: string;
  /** Working repository the webhook path commits in and pushes from. */
  pushDir: string;
  /** The local repository the watch path commits in (the controller reads its .git). */
  localDir: string;
  pushHead: string;
  localHead: string;
}

export async function makeRepositories(tmp: string, testnet: Testnet, greeting: string): Promise<Repositories> {
  const root = path.join(tmp, 'git-server');
  createBareRepo(path.join(root, 'hello-world.git'));
  const gitServer = await startGitServer({ root });
  onCleanup('git server', () => gitServer.stop());
  const remoteUrl = gitServer.url('hello-world.git');

  const push = WorkRepo.init(path.join(tmp, 'push-repo'));
  writeModels(push.dir, testnet, greeting);
  const pushHead = push.commit('hello-world on the test hosts');
  // Not push.push(): a synchronous git would block this process, which serves the repository.
  await gitAsync(push.dir, ['push', '--quiet', remoteUrl, 'main']);

  const local = WorkRepo.init(path.join(tmp, 'local-repo'));
  writeModels(local.dir, testnet, greeting);
  const localHead = local.commit('hello-world on the test hosts');
  return { gitServer, remoteUrl, pushDir: push.dir, localDir: local.dir, pushHead, localHead };
}

export interface RefEvent {
  at: number;
  event: string;
  path: string;
}

/**
 * A second chokidar watcher on exactly the paths (and options) src/git/watch.ts watches, to
 * see when the file-system events arrive, before the controller's 100 ms debounce.
 */
export async function observeRefs(repoDir: string): Promise<{ events: RefEvent[]; close(): Promise<void> }> {
  const gitdir = findGitdir(repoDir);
  if (!gitdir) throw new Error(`${repoDir} is not a repository`);
  const paths = [path.join(gitdir, 'refs', 'heads'), path.join(gitdir, 'refs', 'tags'), path.join(gitdir, 'packed-refs'), path.join(gitdir, 'HEAD')];
  const watcher = watch(paths, { ignoreInitial: true, persistent: true });
  const events: RefEvent[] = [];
  watcher.on('all', (event, p) => events.push({ at: performance.now(), event, path: path.relative(gitdir, p) }));
  watcher.on('error', () => {});
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  const reg = onCleanup('refs observer', () => watcher.close());
  return { events, close: () => reg.run() };
}
