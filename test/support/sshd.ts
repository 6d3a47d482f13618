import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { hostLayout, NS_SSHD_CONFIG, SSHD } from '../../src/testnet/layout.ts';
import { findUnshare, spawnHostSshd } from '../../src/testnet/namespace.ts';
import { processAlive, processStartTime } from '../../src/lib/proc.ts';
import { mountNsOf, processesInMountNs } from '../../src/testnet/processes.ts';
import { isPortInUse, waitForSshBanner } from '../../src/testnet/readiness.ts';
import { readState, writeState } from '../../src/testnet/state.ts';
import type { Testnet } from '../../src/testnet/types.ts';

/**
 * Stopping and restarting one test host's sshd, for machine-fault tests: src/testnet brings a
 * whole network up and down only. Stopping kills the host's listener and every SSH session
 * (SIGKILL, like a crash), but not what runs on the host (its services, commands the sessions
 * started): the machine is there, SSH is not. Restarting starts sshd again in the host's own
 * mount namespace (nsenter into a process still living there; a new namespace with the same
 * binds if none is left) and updates DIR/testnet.json, so testnetDown still stops everything.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function hostState(net: Testnet, name: string) {
  const state = readState(net.dir);
  const h = state?.hosts.find((x) => x.name === name);
  if (!state || !h) throw new Error(`no test host ${name} in ${net.dir}`);
  return { state, h };
}

/** Kills the sshd listener and sessions of a test host; returns the pids killed. */
export async function stopHostSshd(net: Testnet, name: string): Promise<number[]> {
  const { h } = hostState(net, name);
  const sshds = [h.pid, ...processesInMountNs(new Set([h.mountNs]))].filter((pid, i, all) => all.indexOf(pid) === i && processAlive(pid) && comm(pid) === 'sshd');
  for (const pid of sshds) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + 5000;
  while (sshds.some(processAlive) && Date.now() < deadline) await sleep(10);
  return sshds;
}

/** Starts the test host's sshd again and waits until it answers. */
export async function startHostSshd(net: Testnet, name: string): Promise<number> {
  const { state, h } = hostState(net, name);
  const layout = hostLayout(h.dir);
  if (await isPortInUse(h.address, h.port)) throw new Error(`sshd of ${name} is running already (${h.address}:${h.port} answers)`);
  const member = processesInMountNs(new Set([h.mountNs])).find(processAlive);
  let pid: number | undefined;
  if (member !== undefined) {
    const logFd = openSync(layout.log, 'a', 0o644);
    try {
      const child = spawn('/usr/bin/nsenter', [`--target=${member}`, '--mount', '--uts', SSHD, '-D', '-e', '-f', NS_SSHD_CONFIG], {
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
        cwd: '/',
      });
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(logFd);
    }
  } else {
    const unshare = findUnshare();
    if (!unshare) throw new Error('unshare not found');
    pid = spawnHostSshd({ unshare, hostDir: h.dir, name: h.name, logFile: layout.log }).pid;
  }
  if (pid === undefined) throw new Error(`could not start sshd of ${name}`);
  const ready = await waitForSshBanner(h.address, h.port, { timeoutMs: 10_000, exited: () => !processAlive(pid!) });
  if (ready !== 'ready') throw new Error(`sshd of ${name} did not come back (${ready}); see ${layout.log}`);
  h.pid = pid;
  h.pidStartTime = processStartTime(pid) ?? '';
  h.mountNs = mountNsOf(pid) ?? h.mountNs;
  writeState(state);
  const mem = net.hosts.find((x) => x.name === name);
  if (mem) {
    mem.pid = pid;
    mem.mountNs = h.mountNs;
  }
  return pid;
}
