import { readdirSync, readlinkSync } from 'node:fs';
import { processAlive } from '../lib/proc.ts';

/** `mnt:[4026531832]` of a process, or undefined when it is gone (or a zombie). */
export function mountNsOf(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

export function ownMountNs(): string {
  const ns = mountNsOf('self');
  if (!ns) throw new Error('cannot read /proc/self/ns/mnt');
  return ns;
}

/** Every live process whose mount namespace is one of `namespaces`. */
export function processesInMountNs(namespaces: ReadonlySet<string>): number[] {
  const pids: number[] = [];
  if (namespaces.size === 0) return pids;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const ns = mountNsOf(pid);
    if (ns && namespaces.has(ns)) pids.push(pid);
  }
  return pids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops `pids` (already verified by the caller) and every process in `namespaces`:
 * SIGTERM, wait up to `graceMs`, then SIGKILL. Processes that appear in a namespace while
 * waiting (a session being forked) are signalled too. Returns how many distinct processes
 * were signalled. Never touches a process in the caller's own mount namespace.
 */
export async function stopProcesses(pids: number[], namespaces: ReadonlySet<string>, opts: { graceMs?: number } = {}): Promise<number> {
  const own = ownMountNs();
  const nsSet = new Set([...namespaces].filter((ns) => ns !== own));
  const signalled = new Set<number>();
  const term = (pid: number) => {
    if (pid !== process.pid && !signalled.has(pid) && signal(pid, 'SIGTERM')) signalled.add(pid);
  };
  const alive = () => [...new Set([...pids, ...processesInMountNs(nsSet)])].filter(processAlive);

  // Listeners first, so no new sessions are forked while the rest are stopped.
  for (const pid of pids) if (processAlive(pid)) term(pid);
  for (const pid of processesInMountNs(nsSet)) term(pid);

  const deadline = Date.now() + (opts.graceMs ?? 3000);
  let left = alive();
  while (left.length > 0 && Date.now() < deadline) {
    left.forEach(term);
    await sleep(25);
    left = alive();
  }
  if (left.length > 0) {
    for (const pid of left) {
      if (!signalled.has(pid) && signal(pid, 'SIGKILL')) signalled.add(pid);
      else signal(pid, 'SIGKILL');
    }
    const killDeadline = Date.now() + 2000;
    while (alive().length > 0 && Date.now() < killDeadline) await sleep(25);
  }
  return signalled.size;
}
