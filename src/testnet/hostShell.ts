import { chmodSync, copyFileSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { TestnetError } from '../errors.ts';
import { SSHD } from './layout.ts';

/**
 * What a test host's shell and tools are (docs/runtime.md, "Platforms"):
 * - `default`: the machine's own (Debian: root logs in to bash, `sh` is dash, GNU coreutils);
 * - `dash`: root's login shell and /bin/sh are dash; the tools are the machine's own;
 * - `busybox`: root's login shell and /bin/sh are BusyBox ash, and the only commands on the
 *   host are BusyBox's applets. /usr/bin (hence /bin), /usr/sbin (hence /sbin) and
 *   /usr/local/{bin,sbin} are covered inside the host's mount namespace by a directory holding a
 *   copy of busybox and one symlink per applet, so neither PATH nor an absolute path reaches a
 *   GNU tool. Two exceptions the host needs to be a host at all: sshd itself in /usr/sbin, and
 *   node in /usr/bin (the application the hello-world example deploys, not a tool the runtime uses).
 */
export type HostShell = 'default' | 'dash' | 'busybox';
export const HOST_SHELLS: readonly HostShell[] = ['default', 'dash', 'busybox'];

// Debian's packages' paths (/bin is /usr/bin on a merged /usr, and reaches both otherwise).
const BUSYBOX = '/bin/busybox';
const DASH = '/bin/dash';
/** In a host's directory: the binds START_SCRIPT (namespace.ts) sources for the variant. */
export const HOST_SHELL_SETUP = 'shell-setup.sh';

export function checkHostShell(shell: HostShell): void {
  if (!HOST_SHELLS.includes(shell)) throw new TestnetError('TESTNET_SHELL_INVALID', `unknown test host shell ${JSON.stringify(shell)}: expected ${HOST_SHELLS.join(', ')}`, { shell });
}

/**
 * Prepares HOSTDIR for the variant: the files the start script binds, and HOSTDIR/shell-setup.sh,
 * which START_SCRIPT sources inside the new namespace (with `d` the host's directory there)
 * before it starts sshd. Nothing for `default`.
 */
export function prepareHostShell(hostDirectory: string, shell: HostShell): void {
  if (shell === 'default') return;
  const own = path.join(hostDirectory, 'shell');
  mkdirSync(own, { mode: 0o755 });
  writeFileSync(path.join(own, 'passwd'), rootLoginShell(readFileSync('/etc/passwd', 'utf8'), '/bin/sh'), { mode: 0o644 });
  const lines = ['mount --bind "$d/shell/passwd" /etc/passwd || return 1'];
  if (shell === 'dash') {
    lines.push(`mount --bind ${DASH} /bin/sh || return 1`);
  } else {
    lines.push(...busyboxTree(own));
  }
  writeFileSync(path.join(hostDirectory, HOST_SHELL_SETUP), `${lines.join('\n')}\n`, { mode: 0o644 });
}

/** /etc/passwd with root's login shell replaced: sshd runs every command through it. */
export function rootLoginShell(passwd: string, shell: string): string {
  return passwd.replace(/^(root:[^:\n]*:0:[^:\n]*:[^:\n]*:[^:\n]*:)[^\n]*$/m, `$1${shell}`);
}

/** Makes OWN/bin (busybox and its applets, node's mount point) and OWN/sbin (sshd's); returns the binds. */
function busyboxTree(own: string): string[] {
  const bin = path.join(own, 'bin');
  const sbin = path.join(own, 'sbin');
  mkdirSync(bin, { mode: 0o755 });
  mkdirSync(sbin, { mode: 0o755 });
  copyFileSync(BUSYBOX, path.join(bin, 'busybox'));
  chmodSync(path.join(bin, 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[A-Za-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', path.join(bin, a));
  writeFileSync(path.join(bin, 'node'), '', { mode: 0o755 });
  writeFileSync(path.join(sbin, 'sshd'), '', { mode: 0o755 });
  // Files are bound first (they hide behind the directory binds otherwise); --rbind carries them.
  return [
    // This node, wherever it is installed (the application's own runtime, not the machine's tools).
    `mount --bind ${JSON.stringify(process.execPath)} "$d/shell/bin/node" || return 1`,
    `mount --bind ${SSHD} "$d/shell/sbin/sshd" || return 1`,
    'mount --rbind "$d/shell/sbin" /usr/sbin || return 1',
    'mount --rbind "$d/shell/bin" /usr/local/bin || return 1',
    'mount --rbind "$d/shell/bin" /usr/local/sbin || return 1',
    // Without a merged /usr, /bin and /sbin hold tools of their own.
    ...['/sbin', '/bin'].filter(isRealDirectory).map((dir) => `mount --rbind "$d/shell/${dir === '/bin' ? 'bin' : 'sbin'}" ${dir} || return 1`),
    // Last: from here on `mount` itself is BusyBox's.
    'mount --rbind "$d/shell/bin" /usr/bin || return 1',
  ];
}

function isRealDirectory(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
