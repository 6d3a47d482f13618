import { readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat that strata reads (proc(5) numbers them 3, 22, 14 and 15). */
export interface ProcStat {
  /** Field 3: R, S, D, Z (zombie), X (dead), … */
  state: string;
  /** Field 22, clock ticks since boot: with the pid it names one process even after pid reuse. */
  startTime: string;
  /** Fields 14 + 15, user and system time in clock ticks. */
  cpuTicks: number;
}

/** The one reader of /proc/PID/stat; undefined off Linux or when the process is gone. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const [state, startTime] = [rest[0], rest[19]];
  if (!state || !startTime) return undefined;
  return { state, startTime, cpuTicks: Number(rest[11]) + Number(rest[12]) };
}

/** Start time of a process (see ProcStat.startTime); undefined off Linux or when it is gone. */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** Whether a process with this pid runs on this host (a zombie does not count). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const stat = procStat(pid);
  if (stat) return stat.state !== 'Z' && stat.state !== 'X';
  // No /proc (not Linux), or no such process.
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
