import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { SystemInfo } from './report.ts';

/** The machine the figures come from. */
export function systemInfo(): SystemInfo {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const osRelease = (() => {
    try {
      return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.type();
    } catch {
      return os.type();
    }
  })();
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    nproc: Number(run('nproc', [])) || os.availableParallelism(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    memTotal: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    freeH: run('free', ['-h']),
    node: process.version,
    os: osRelease,
    kernel: os.release(),
    loadAvg: { start: Math.round(os.loadavg()[0]! * 100) / 100 },
    commit: run('git', ['rev-parse', '--short', 'HEAD']) + (run('git', ['status', '--porcelain', '--', 'src']) ? ' (src/ has uncommitted changes)' : ''),
  };
}

/**
 * TCP listeners on addresses of a loopback /24 (e.g. `127.0.60`), from /proc/net/tcp: after
 * teardown there must be none (no sshd of a test host, no service started on one).
 */
export function listenersOn(subnet: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] !== '0A' || !f[1]) continue;
    const [hexAddr, hexPort] = f[1].split(':');
    if (!hexAddr || !hexPort) continue;
    const bytes = hexAddr.match(/../g)!.map((h) => parseInt(h, 16)).reverse();
    const addr = bytes.join('.');
    if (addr.startsWith(`${subnet}.`)) out.push(`${addr}:${parseInt(hexPort, 16)}`);
  }
  return out.sort();
}
