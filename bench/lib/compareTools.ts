import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { applyDeployment } from '../../src/api/apply.ts';
import type { Context } from '../../src/api/context.ts';
import { planDeployment } from '../../src/api/plan.ts';
import { deploymentStatus, driftOf } from '../../src/api/status.ts';
import { isEmptyPlan } from '../../src/plan/diff.ts';
import type { Testnet } from '../../src/testnet/index.ts';
import { onCleanup } from './cleanup.ts';
import type { GeneratedService, TestnetDeployment } from './generate.ts';
import { msSince } from './stats.ts';

/**
 * The three ways `npm run bench:compare` does the same work: strata (library API, in process),
 * Ansible (bench/ansible/deploy.yml through `ansible-playbook`), and the floor (plain OpenSSH:
 * one `tar | ssh … 'tar -x; start; wait'` per host, all hosts in parallel). Every operation
 * returns its wall time in ms; only the operation itself is inside the timer.
 */

export const ANSIBLE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'ansible');
const FLOOR_ROOT = '/root/bench-floor';

// ------------------------------------------------------------------ child processes

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command, registered for teardown by its PID while it runs. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: ChildProcess | 'ignore'; cwd?: string } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.stdin && opts.stdin !== 'ignore' ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const reg = onCleanup(`${path.basename(cmd)} pid ${child.pid}`, () => {
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    });
    if (opts.stdin && opts.stdin !== 'ignore') opts.stdin.stdout!.pipe(child.stdin!);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => {
      reg.forget();
      reject(e);
    });
    child.on('close', (code) => {
      reg.forget();
      resolve({ code, stdout, stderr });
    });
  });
}

/** `tar -c` of some service directories, as a child whose stdout feeds another command. */
function tarOf(root: string, names: string[]): { child: ChildProcess; done: Promise<void> } {
  const child = spawn('tar', ['-C', root, '-cf', '-', ...names], { stdio: ['ignore', 'pipe', 'inherit'] });
  const reg = onCleanup(`tar pid ${child.pid}`, () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      reg.forget();
      if (code === 0) resolve();
      else reject(new Error(`tar exited ${code}`));
    });
  });
  return { child, done };
}

// ------------------------------------------------------------------ OpenSSH (floor and Ansible)

export interface SshEnv {
  testnet: Testnet;
  knownHosts: string;
  /** Directory of the ControlMaster sockets (the floor's and Ansible's). */
  controlDir: string;
}

/** A known_hosts file with every test host's key. */
export function writeKnownHosts(testnet: Testnet, file: string): void {
  writeFileSync(file, testnet.hosts.map((h) => `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${h.hostKey}\n`).join(''));
}

function sshArgs(env: SshEnv, opts: { master: boolean }): string[] {
  return [
    '-F', '/dev/null',
    '-i', env.testnet.identityFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${env.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR',
    ...(opts.master ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${env.controlDir}/%C`, '-o', 'ControlPersist=60'] : ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']),
    '-l', 'root',
  ];
}

/**
 * Stops every ssh ControlMaster whose socket is in `dir`: asks it for its PID (`-O check`),
 * tells it to exit (`-O exit`), and kills that PID if it is still there after 2 s.
 */
export async function closeMasters(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let closed = 0;
  for (const name of readdirSync(dir)) {
    const sock = path.join(dir, name);
    const check = await run('ssh', ['-F', '/dev/null', '-o', `ControlPath=${sock}`, '-O', 'check', 'master']);
    const pid = Number(/pid=(\d+)/.exec(check.stderr)?.[1] ?? 0);
    await run('ssh', ['-F', '/dev/null', '-o', `ControlPath=${sock}`, '-O', 'exit', 'master']);
    if (pid > 0) {
      const until = Date.now() + 2000;
      while (alive(pid) && Date.now() < until) await sleep(20);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      closed++;
    }
  }
  return closed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ the floor

/** Shell run on a host: unpack the tar from stdin, (re)start the services, wait until each listens. */
function floorScript(address: string, services: GeneratedService[]): string {
  const lines = [
    // alive = exists and is not a zombie (this machine's PID 1 reaps orphans late); as in deploy.yml
    `alive() { s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null); case $s in Z*|X*|'') return 1 ;; esac; }`,
    `mkdir -p ${FLOOR_ROOT} && tar -C ${FLOOR_ROOT} -xf - || exit 1`,
  ];
  for (const s of services) {
    lines.push(
      `cd ${FLOOR_ROOT}/${s.name} || exit 1`,
      `if [ -f pid ] && alive "$(cat pid)"; then old=$(cat pid); kill -TERM "$old"; while alive "$old"; do sleep 0.01; done; fi`,
      `HOST=${address} PORT=${s.port} STRATA_SERVICE=${s.name} setsid nohup ${s.start} </dev/null >>log 2>&1 &`,
      'echo $! >pid',
    );
  }
  for (const s of services) {
    // Listening, as strata's runtime checks it: a LISTEN (0A) entry in /proc/net/tcp, no connection made.
    const hex = `${address.split('.').reverse().map((o) => Number(o).toString(16).padStart(2, '0')).join('')}:${s.port.toString(16).padStart(4, '0')}`.toUpperCase();
    lines.push(`i=0; until awk '$2 == "${hex}" && $4 == "0A" { f = 1; exit } END { exit !f }' /proc/net/tcp; do i=$((i+1)); [ $i -gt 2000 ] && { echo "${s.name} not listening" >&2; exit 1; }; sleep 0.01; done`);
  }
  return lines.join('\n');
}

/** The floor's deployment of `services` (grouped by host): all hosts in parallel, one ssh each. */
export async function floorDeploy(env: SshEnv, dep: TestnetDeployment, services: GeneratedService[]): Promise<number> {
  const artifactRoot = path.dirname(dep.services[0]!.artifactDir);
  const byHost = new Map<string, GeneratedService[]>();
  for (const s of services) byHost.set(s.machine, [...(byHost.get(s.machine) ?? []), s]);
  const t0 = performance.now();
  await Promise.all(
    [...byHost].map(async ([machine, list]) => {
      const host = env.testnet.hosts.find((h) => h.name === machine)!;
      const tar = tarOf(artifactRoot, list.map((s) => s.name));
      const r = await run('ssh', [...sshArgs(env, { master: true }), '-p', String(host.port), host.address, floorScript(host.address, list)], { stdin: tar.child });
      await tar.done;
      if (r.code !== 0) throw new Error(`floor on ${machine}: ssh exited ${r.code}: ${r.stderr.trim()}`);
    }),
  );
  return msSince(t0);
}

/** One `ssh host true` per host, all in parallel, new connections (no master). */
export async function floorProbe(env: SshEnv): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    env.testnet.hosts.map(async (h) => {
      const r = await run('ssh', [...sshArgs(env, { master: false }), '-p', String(h.port), h.address, 'true']);
      if (r.code !== 0) throw new Error(`ssh ${h.name} true: exited ${r.code}: ${r.stderr.trim()}`);
    }),
  );
  return msSince(t0);
}

// ------------------------------------------------------------------ Ansible

export interface AnsibleRun {
  ms: number;
  /** Sum of `changed=` over the PLAY RECAP. */
  changed: number;
}

/** Writes the inventory from bench/ansible/inventory.template.yml: its vars, one entry per host. */
export function writeInventory(env: SshEnv, dep: TestnetDeployment, file: string): void {
  const template = readFileSync(path.join(ANSIBLE_DIR, 'inventory.template.yml'), 'utf8')
    .replaceAll('@IDENTITY_FILE@', env.testnet.identityFile)
    .replaceAll('@KNOWN_HOSTS@', env.knownHosts)
    .replaceAll('@ARTIFACT_ROOT@', path.dirname(dep.services[0]!.artifactDir));
  const inv = YAML.parse(template) as { all: { vars: Record<string, unknown>; children: { bench: { hosts: Record<string, unknown> } } } };
  const hosts: Record<string, unknown> = {};
  for (const h of env.testnet.hosts) {
    hosts[h.name] = {
      ansible_host: h.address,
      ansible_port: h.port,
      host_address: h.address,
      services: dep.services.filter((s) => s.machine === h.name).map((s) => ({ name: s.name, port: s.port, start: s.start })),
    };
  }
  inv.all.children.bench.hosts = hosts;
  writeFileSync(file, YAML.stringify(inv, { lineWidth: 0 }));
}

export function ansibleEnv(env: SshEnv, work: string, forks: number): NodeJS.ProcessEnv {
  const localTmp = path.join(work, 'ansible-local');
  mkdirSync(localTmp, { recursive: true });
  return {
    ...process.env,
    ANSIBLE_CONFIG: path.join(work, 'no-ansible.cfg'), // a path that does not exist: no cfg from cwd or ~
    ANSIBLE_FORKS: String(forks),
    ANSIBLE_PIPELINING: 'True',
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    ANSIBLE_SSH_ARGS: '-o ControlMaster=auto -o ControlPersist=60s',
    ANSIBLE_SSH_CONTROL_PATH_DIR: env.controlDir,
    ANSIBLE_LOCAL_TEMP: localTmp,
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_NOCOLOR: 'True',
    ANSIBLE_STDOUT_CALLBACK: 'default',
    ANSIBLE_GATHERING: 'explicit',
  };
}

export async function ansiblePlaybook(inventory: string, aenv: NodeJS.ProcessEnv, opts: { check?: boolean } = {}): Promise<AnsibleRun> {
  const t0 = performance.now();
  const r = await run('ansible-playbook', ['-i', inventory, path.join(ANSIBLE_DIR, 'deploy.yml'), ...(opts.check ? ['--check'] : [])], { env: aenv });
  const ms = msSince(t0);
  if (r.code !== 0) throw new Error(`ansible-playbook exited ${r.code}:\n${(r.stdout + r.stderr).split('\n').slice(-30).join('\n')}`);
  const changed = [...r.stdout.matchAll(/changed=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  return { ms, changed };
}

// ------------------------------------------------------------------ strata

export interface StrataApply {
  /** planDeployment + applyDeployment: what `strata apply` does, without process start-up. */
  ms: number;
  planMs: number;
  applyMs: number;
  steps: number;
  /** Artifact hashes uploaded, per machine. */
  uploaded: Record<string, string[]>;
}

export async function strataApply(dep: TestnetDeployment, ctx: Context): Promise<StrataApply> {
  const t0 = performance.now();
  const plan = await planDeployment(dep.rootFile, ctx);
  const planMs = msSince(t0);
  if (isEmptyPlan(plan)) throw new Error('strata: expected a plan with steps, got an empty one');
  const t1 = performance.now();
  const r = await applyDeployment(plan, ctx);
  return { ms: msSince(t0), planMs, applyMs: msSince(t1), steps: r.steps, uploaded: r.uploaded };
}

/** `strata apply` with nothing changed: plan, find it empty, apply nothing. */
export async function strataNoChange(dep: TestnetDeployment, ctx: Context): Promise<number> {
  const t0 = performance.now();
  const plan = await planDeployment(dep.rootFile, ctx);
  if (!isEmptyPlan(plan)) throw new Error(`strata: expected an empty plan, got ${plan.steps.length} steps`);
  return msSince(t0);
}

/** deploymentStatus: one round trip to every machine; every machine must answer without drift. */
export async function strataProbe(dep: TestnetDeployment, ctx: Context): Promise<number> {
  const t0 = performance.now();
  const report = await deploymentStatus(dep.deployment, ctx);
  const ms = msSince(t0);
  const unreachable = report.machines.filter((m) => !m.reachable);
  if (unreachable.length) throw new Error(`strata status: unreachable ${unreachable.map((m) => `${m.machine} (${m.error})`).join(', ')}`);
  const drift = driftOf(report);
  if (drift.length) throw new Error(`strata status: drift ${JSON.stringify(drift.slice(0, 3))}`);
  return ms;
}
