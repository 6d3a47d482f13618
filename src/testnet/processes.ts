import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

function stat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
  const state = rest[0];
  const startTime = rest[19];
  return state && startTime ? { state, startTime } : undefined;
}

/** Start time of a process (clock ticks since boot); with the pid it identifies the process. */
export function startTimeOf(pid: number): string | undefined {
  return stat(pid)?.startTime;
}

/** True while the process exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
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
  const alive = () => [...new Set([...pids, ...processesInMountNs(nsSet)])].filter(isRunning);

  // Listeners first, so no new sessions are forked while the rest are stopped.
  for (const pid of pids) if (isRunning(pid)) term(pid);
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
