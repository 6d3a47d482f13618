import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControllerApi, jsonLines, until } from './controller.ts';
import { spawnStrata, type StrataProcess } from './strataProcess.ts';
import { WorkRepo } from './gitServer.ts';

/**
 * A real `strata controller` process keeping one small deployment (`files`: a file service on
 * a `target: local` machine, from a local repository with a working tree) equal to its
 * branch, with a webhook secret and an API token. Used by the tests of the HTTP surface.
 */
export interface ControllerProcess {
  proc: StrataProcess;
  api: ControllerApi;
  host: string;
  port: number;
  webhookSecret: string;
  apiToken: string;
  /** The deployment's repository (a commit to it starts a reconcile: its refs are watched). */
  repo: WorkRepo;
  /** The directory the deployment places its files in. */
  files: string;
  /** The log lines so far, parsed. */
  log: () => Record<string, any>[];
  /** SIGTERM, then SIGKILL after 10 s, by PID; resolves when it exited. */
  stop: () => Promise<void>;
}

export async function startControllerProcess(opts: {
  dir: string;
  /** 127.0.X.Y:PORT to listen on. */
  listen: string;
  /** Address of the local machine the deployment places its files on. */
  machineAddress: string;
  /** YAML lines for the configuration's `http:` block (indented by two spaces), if any. */
  http?: string;
  webhookSecret: string;
  apiToken: string;
}): Promise<ControllerProcess> {
  const files = join(opts.dir, 'placed');
  mkdirSync(files, { recursive: true });
  const repo = WorkRepo.init(join(opts.dir, 'repo'));
  repo.commit('a file service on a local machine', {
    'strata.yaml': 'name: files\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n',
    'network.yaml': `machines:\n  box:\n    target: local\n    address: ${opts.machineAddress}\n    allowedPaths: [${JSON.stringify(files)}]\n`,
    'services.yaml': `services:\n  site:\n    type: file\n    artifact: site\n    path: ${JSON.stringify(join(files, 'site'))}\n`,
    'distribution.yaml': 'distribution:\n  site: box\n',
    'site/index.html': '<p>hello</p>\n',
  });
  writeFileSync(join(opts.dir, 'api-token'), `${opts.apiToken}\n`, { mode: 0o600 });
  writeFileSync(join(opts.dir, 'webhook-secret'), `${opts.webhookSecret}\n`, { mode: 0o600 });
  const config = join(opts.dir, 'controller.yaml');
  writeFileSync(
    config,
    `stateDir: ${JSON.stringify(join(opts.dir, 'state'))}
listen: ${opts.listen}
apiToken: { file: ${JSON.stringify(join(opts.dir, 'api-token'))} }
logLevel: info
${opts.http ? `http:\n${opts.http}\n` : ''}deployments:
  - name: files
    repository:
      url: ${JSON.stringify(repo.dir)}
      branch: main
    interval: 10m
    probeInterval: 10m
    localMachines: true
    webhook:
      secret: { file: ${JSON.stringify(join(opts.dir, 'webhook-secret'))} }
`,
  );
  const proc = spawnStrata(['controller', '--config', config], { cwd: opts.dir });
  const log = () => jsonLines(proc.stdout());
  const listening = await until(
    () => {
      if (proc.done()) throw new Error('exited');
      return log().find((l) => typeof l.msg === 'string' && l.msg.startsWith('controller listening on '));
    },
    30_000,
    'the controller to listen',
  ).catch((e: Error) => {
    if (proc.child.pid !== undefined && !proc.done()) process.kill(proc.child.pid, 'SIGKILL');
    throw new Error(`${e.message}\nstdout: ${proc.stdout().slice(-2000)}\nstderr: ${proc.stderr().slice(-2000)}`);
  });
  const url = new URL(String(listening.msg).replace('controller listening on ', ''));
  const stop = async () => {
    const pid = proc.child.pid;
    if (pid === undefined || proc.done()) return;
    process.kill(pid, 'SIGTERM');
    const killer = setTimeout(() => !proc.done() && process.kill(pid, 'SIGKILL'), 10_000);
    await proc.exited;
    clearTimeout(killer);
  };
  return {
    proc,
    api: new ControllerApi(url.origin, opts.apiToken),
    host: url.hostname,
    port: Number(url.port),
    webhookSecret: opts.webhookSecret,
    apiToken: opts.apiToken,
    repo,
    files,
    log,
    stop,
  };
}
