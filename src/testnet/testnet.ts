import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestnetError } from '../errors.ts';
import { checkHostShell, prepareHostShell, type HostShell } from './hostShell.ts';
import { generateEd25519Key } from './keys.ts';
import { DIR_ENTRIES, HOSTS_DIR, hostDir, hostLayout, IDENTITY_FILE, NS_CONF_DIR, PHYSICAL_NETWORK_FILE, PRIVSEP_DIR, STATE_FILE } from './layout.ts';
import { EXIT_NAMESPACE_FAILED, EXIT_SSHD_CONFIG_INVALID, spawnHostSshd } from './namespace.ts';
import { renderPhysicalNetwork } from './physicalNetwork.ts';
import { checkRoot, checkTools, DEFAULT_SUBNET, SSH_PORT, validateMachines, validateSubnet } from './preconditions.ts';
import { processAlive, processStartTime } from '../lib/proc.ts';
import { mountNsOf, ownMountNs, processesInMountNs, stopProcesses } from './processes.ts';
import { isPortInUse, waitForSshBanner } from './readiness.ts';
import { renderSshdConfig } from './sshdConfig.ts';
import { readState, toTestnet, writeState, type TestnetHostState, type TestnetState } from './state.ts';
import type { Testnet } from './types.ts';

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

type Log = (msg: string) => void;
const quiet: Log = () => {};

/**
 * Brings up one SSH test host per machine: sshd on `${subnet}.${i+1}:22`, each in its own mount
 * namespace with private /var/lib/strata, /root and /tmp, and the shell and tools `shell` says
 * (hostShell.ts; the machine's own by default). Writes DIR/testnet.json and
 * DIR/network.physical.yaml. On failure, stops whatever it started and removes what it made.
 */
export async function testnetUp(opts: { dir: string; machines: string[]; subnet?: string; shell?: HostShell; log?: Log }): Promise<Testnet> {
  const log = opts.log ?? quiet;
  checkRoot();
  const { unshare } = checkTools();
  const subnet = opts.subnet ?? DEFAULT_SUBNET;
  validateSubnet(subnet);
  validateMachines(opts.machines);
  const shell = opts.shell ?? 'default';
  checkHostShell(shell);
  const dir = path.resolve(opts.dir);
  const started = Date.now();

  const existing = readState(dir);
  if (existing) {
    const { pids, namespaces } = liveTargets(existing);
    const running = new Set([...pids, ...processesInMountNs(namespaces)]).size;
    if (running > 0) {
      throw new TestnetError(
        'TESTNET_EXISTS',
        `${dir} already holds a running testnet (${running} process${running === 1 ? '' : 'es'}); stop it first with \`strata testnet down ${dir}\``,
        { dir, running },
      );
    }
    log(`testnet: removing the stale testnet recorded in ${dir}`);
    await testnetDown(dir, { log });
  } else {
    const conflicts = DIR_ENTRIES.filter((e) => existsSync(path.join(dir, e)));
    if (conflicts.length > 0) {
      throw new TestnetError(
        'TESTNET_DIR_CONFLICT',
        `${dir} holds ${conflicts.join(', ')} but no ${STATE_FILE}: not made by strata testnet; use an empty or new directory`,
        { dir, conflicts },
      );
    }
  }

  const addresses = opts.machines.map((_, i) => `${subnet}.${i + 1}`);
  const inUse = await Promise.all(addresses.map((a) => isPortInUse(a, SSH_PORT)));
  const busy = addresses.filter((_, i) => inUse[i]);
  if (busy.length > 0) {
    throw new TestnetError(
      'TESTNET_ADDRESS_IN_USE',
      `something already listens on ${busy.map((a) => `${a}:${SSH_PORT}`).join(', ')}; choose another subnet or stop it`,
      { addresses: busy },
    );
  }

  const createdDir = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const state: TestnetState = {
    version: 1,
    status: 'creating',
    createdDir,
    subnet,
    dir,
    identityFile: path.join(dir, IDENTITY_FILE),
    physicalNetworkFile: path.join(dir, PHYSICAL_NETWORK_FILE),
    hosts: opts.machines.map((name, i) => ({
      name,
      address: addresses[i]!,
      port: SSH_PORT,
      hostKey: '',
      pid: 0,
      pidStartTime: '',
      dir: hostDir(dir, name),
      mountNs: '',
      shell,
    })),
  };
  // Written before anything else, so `testnetDown` can clean up a half-made DIR.
  writeState(state);

  let aborted = false;
  try {
    prepareMachineDirs();
    mkdirSync(path.join(dir, HOSTS_DIR), { recursive: true, mode: 0o755 });
    for (const h of state.hosts) prepareHostDir(h);

    const [clientKey, ...hostKeys] = await Promise.all([
      generateEd25519Key(state.identityFile),
      ...state.hosts.map((h) => generateEd25519Key(hostLayout(h.dir).hostKey)),
    ]);
    chmodSync(state.identityFile, 0o600);
    state.hosts.forEach((h, i) => {
      h.hostKey = hostKeys[i]!;
      const { authorizedKeys } = hostLayout(h.dir);
      writeFileSync(authorizedKeys, `${clientKey}\n`, { mode: 0o600 });
      chmodSync(authorizedKeys, 0o600);
    });

    const children = state.hosts.map((h) => {
      const child = spawnHostSshd({ unshare, hostDir: h.dir, name: h.name, logFile: hostLayout(h.dir).log });
      const run: { child: ChildProcess; exit?: string; exitCode?: number | null } = { child };
      child.on('error', (err) => (run.exit ??= `could not start ${unshare}: ${err.message}`));
      child.on('exit', (code, signal) => {
        run.exitCode = code;
        run.exit ??= signal ? `killed by ${signal}` : `exit code ${code}`;
      });
      if (child.pid !== undefined) {
        h.pid = child.pid;
        h.pidStartTime = processStartTime(child.pid) ?? '';
      }
      return run;
    });
    state.status = 'starting';
    writeState(state);

    const own = ownMountNs();
    await Promise.all(
      state.hosts.map(async (h, i) => {
        const run = children[i]!;
        const result = await waitForSshBanner(h.address, h.port, { timeoutMs: READY_TIMEOUT_MS, exited: () => run.exit !== undefined || aborted });
        if (aborted) return;
        if (result !== 'ready') throw startFailure(h, result, run.exit, run.exitCode);
        const ns = mountNsOf(h.pid);
        if (!ns || ns === own) {
          throw new TestnetError('TESTNET_NAMESPACE_FAILED', `sshd of test host ${h.name} (pid ${h.pid}) is not in a mount namespace of its own`, { host: h.name });
        }
        h.mountNs = ns;
        log(`testnet: ${h.name} up on ${h.address}:${h.port} (sshd pid ${h.pid}, ${ns})`);
      }),
    );

    writeFileSync(state.physicalNetworkFile, renderPhysicalNetwork(state));
    state.status = 'up';
    writeState(state);
    log(`testnet: ${state.hosts.length} host${state.hosts.length === 1 ? '' : 's'} up in ${Date.now() - started} ms; physical network: ${state.physicalNetworkFile}`);
    return toTestnet(state);
  } catch (err) {
    aborted = true;
    log(`testnet: bringing up failed (${(err as Error).message.split('\n')[0]}); stopping what was started`);
    try {
      await teardown(state, quiet);
    } catch (cleanupErr) {
      log(`testnet: cleaning up ${dir} failed too: ${(cleanupErr as Error).message}`);
    }
    throw err;
  }
}

/**
 * Stops every process of the testnet in DIR (each host's sshd and everything in its mount
 * namespace: SIGTERM, then SIGKILL after ~3 s) and removes what `testnetUp` made. Safe to call
 * twice and on a half-made DIR; a DIR without testnet.json is left alone.
 */
export async function testnetDown(dir: string, opts: { log?: Log } = {}): Promise<{ stopped: number }> {
  const log = opts.log ?? quiet;
  const d = path.resolve(dir);
  const state = readState(d);
  if (!state) {
    log(`testnet: no testnet in ${d}`);
    return { stopped: 0 };
  }
  const stopped = await teardown(state, log);
  log(`testnet: stopped ${stopped} process${stopped === 1 ? '' : 'es'}; removed the testnet in ${d}`);
  return { stopped };
}

async function teardown(state: TestnetState, log: Log): Promise<number> {
  const { pids, namespaces } = liveTargets(state);
  const stopped = await stopProcesses(pids, namespaces, { graceMs: STOP_GRACE_MS });
  const left = [...pids, ...processesInMountNs(namespaces)].filter(processAlive);
  if (left.length > 0) log(`testnet: processes still running after SIGKILL: ${left.join(', ')}`);
  removeEntries(state.dir, state.createdDir);
  return stopped;
}

/**
 * The sshd pids still running as recorded (same pid *and* start time, so a recycled pid is never
 * signalled), and the mount namespaces that are verifiably this testnet's hosts'.
 */
function liveTargets(state: TestnetState): { pids: number[]; namespaces: Set<string> } {
  const own = ownMountNs();
  const pids: number[] = [];
  const namespaces = new Set<string>();
  for (const h of state.hosts) {
    if (h.pid > 0 && h.pidStartTime && processAlive(h.pid) && processStartTime(h.pid) === h.pidStartTime) {
      pids.push(h.pid);
      const ns = mountNsOf(h.pid);
      if (ns && ns !== own && (ns === h.mountNs || nsMemberIsHost(h.pid, h))) namespaces.add(ns);
    }
    // The sshd may be gone while services it started still run in its namespace. Namespace ids are
    // reused once a namespace dies, so only take the recorded one when its mounts are this host's.
    if (h.mountNs && h.mountNs !== own && !namespaces.has(h.mountNs)) {
      const member = processesInMountNs(new Set([h.mountNs]))[0];
      if (member !== undefined && nsMemberIsHost(member, h)) namespaces.add(h.mountNs);
    }
  }
  return { pids, namespaces };
}

/** Whether `pid`'s mount table binds this host's directory over /var/lib/strata and at NS_CONF_DIR. */
function nsMemberIsHost(pid: number, h: TestnetHostState): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return false;
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const strata = hostLayout(h.dir).strata;
  let strataBound = false;
  let confBound = false;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const root = unescape(f[3] ?? '');
    const mountPoint = unescape(f[4] ?? '');
    // `root` is relative to the source filesystem's root, so it is a suffix of the real path.
    if (mountPoint === '/var/lib/strata' && root.endsWith(`/${HOSTS_DIR}/${h.name}/fs/var/lib/strata`) && strata.endsWith(root)) strataBound = true;
    if (mountPoint === NS_CONF_DIR) confBound = true;
  }
  return strataBound && confBound;
}

function removeEntries(dir: string, createdDir: boolean): void {
  // The state file goes last: if removal stops half-way, `testnetDown` can run again.
  // writeFileAtomic's temp files (`testnet.json.tmp-…`) are left behind only by a crash mid-write.
  const temps = existsSync(dir) ? readdirSync(dir).filter((e) => e.startsWith(`${STATE_FILE}.tmp`)) : [];
  const order = [HOSTS_DIR, IDENTITY_FILE, `${IDENTITY_FILE}.pub`, PHYSICAL_NETWORK_FILE, ...temps, STATE_FILE];
  for (const e of order) rmSync(path.join(dir, e), { recursive: true, force: true });
  if (createdDir) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty: something else lives there now; leave it.
    }
  }
}

/** Directories that must exist on the real machine: sshd's privsep dir and the mount points. */
function prepareMachineDirs(): void {
  mkdirSync(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  mkdirSync('/var/lib/strata', { recursive: true, mode: 0o755 });
  mkdirSync(NS_CONF_DIR, { recursive: true, mode: 0o755 });
}

function prepareHostDir(h: TestnetHostState): void {
  const l = hostLayout(h.dir);
  mkdirSync(h.dir, { recursive: true, mode: 0o755 });
  mkdirSync(l.sshdDir, { mode: 0o700 });
  mkdirSync(l.strata, { recursive: true, mode: 0o755 });
  mkdirSync(l.sshDir, { recursive: true, mode: 0o700 });
  chmodSync(l.root, 0o700);
  chmodSync(l.sshDir, 0o700);
  mkdirSync(l.tmp, { mode: 0o1777 });
  chmodSync(l.tmp, 0o1777); // mkdir's mode is masked by the umask
  writeFileSync(l.sshdConfig, renderSshdConfig({ address: h.address, port: h.port }), { mode: 0o600 });
  prepareHostShell(h.dir, h.shell ?? 'default');
}

function logTail(h: TestnetHostState, lines = 15): string {
  try {
    const text = readFileSync(hostLayout(h.dir).log, 'utf8').trimEnd();
    const tail = text.split('\n').slice(-lines).join('\n');
    return tail ? `\n--- ${hostLayout(h.dir).log} (tail) ---\n${tail}` : ' (sshd log is empty)';
  } catch {
    return ' (no sshd log)';
  }
}

function startFailure(h: TestnetHostState, result: 'timeout' | 'exited', exit: string | undefined, exitCode: number | null | undefined): TestnetError {
  const data = { host: h.name, address: h.address, port: h.port, log: hostLayout(h.dir).log };
  if (result === 'timeout') {
    return new TestnetError(
      'TESTNET_SSHD_TIMEOUT',
      `sshd of test host ${h.name} did not answer on ${h.address}:${h.port} within ${READY_TIMEOUT_MS / 1000} s${logTail(h)}`,
      data,
    );
  }
  if (exitCode === EXIT_SSHD_CONFIG_INVALID) {
    return new TestnetError('TESTNET_SSHD_CONFIG', `sshd -t rejected the config of test host ${h.name} (${hostLayout(h.dir).sshdConfig})${logTail(h)}`, data);
  }
  if (exitCode === EXIT_NAMESPACE_FAILED) {
    return new TestnetError('TESTNET_NAMESPACE_FAILED', `could not set up the mount namespace of test host ${h.name}${logTail(h)}`, data);
  }
  return new TestnetError('TESTNET_SSHD_FAILED', `sshd of test host ${h.name} stopped before accepting connections (${exit ?? 'unknown'})${logTail(h)}`, data);
}
