import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { HOST_SHELL_SETUP } from './hostShell.ts';
import { NS_CONF_DIR, NS_SSHD_CONFIG, SSHD, UNSHARE_CANDIDATES } from './layout.ts';

/** Exit codes of the start script, before it execs sshd. */
export const EXIT_NAMESPACE_FAILED = 77;
export const EXIT_SSHD_CONFIG_INVALID = 78;

/**
 * Runs inside the new mount + UTS namespace (propagation already private), as `sh -c SCRIPT sh HOSTDIR NAME`.
 * 1. bind the host's directory to the fixed NS_CONF_DIR (reachable whatever later binds hide);
 * 2. bind its fs/ subdirectories over /var/lib/strata, /root, /tmp (taken from NS_CONF_DIR);
 *    and, for a shell variant (hostShell.ts), source the binds that make its shell and tools;
 * 3. bind the host's sshd/ directory over NS_CONF_DIR: sshd's config and host key stay at a fixed
 *    path, which matters because sshd re-execs itself for every connection and the re-exec'd
 *    child loads the host key from disk again;
 * 4. set the hostname (UTS namespace) to the machine name, check the config, exec sshd.
 * `exec` keeps the PID: the spawned PID is the sshd listener.
 */
const START_SCRIPT = `
d=${NS_CONF_DIR}
mount --bind "$1" "$d" || exit ${EXIT_NAMESPACE_FAILED}
mount --bind "$d/fs/var/lib/strata" /var/lib/strata || exit ${EXIT_NAMESPACE_FAILED}
mount --bind "$d/fs/root" /root || exit ${EXIT_NAMESPACE_FAILED}
mount --bind "$d/fs/tmp" /tmp || exit ${EXIT_NAMESPACE_FAILED}
if [ -f "$d/${HOST_SHELL_SETUP}" ]; then . "$d/${HOST_SHELL_SETUP}" || exit ${EXIT_NAMESPACE_FAILED}; fi
mount --bind "$d/sshd" "$d" || exit ${EXIT_NAMESPACE_FAILED}
printf '%s' "$2" > /proc/sys/kernel/hostname || exit ${EXIT_NAMESPACE_FAILED}
${SSHD} -t -f ${NS_SSHD_CONFIG} || exit ${EXIT_SSHD_CONFIG_INVALID}
exec ${SSHD} -D -e -f ${NS_SSHD_CONFIG}
`;

export function findUnshare(): string | undefined {
  return UNSHARE_CANDIDATES.find((p) => existsSync(p));
}

/**
 * Starts one host's sshd in its own mount and UTS namespaces, detached (its own session, stdio
 * to `logFile`, unref'd) so it outlives the calling process.
 */
export function spawnHostSshd(opts: { unshare: string; hostDir: string; name: string; logFile: string }): ChildProcess {
  const logFd = openSync(opts.logFile, 'a', 0o644);
  try {
    const child = spawn(
      opts.unshare,
      ['--mount', '--uts', '--propagation', 'private', '/bin/sh', '-c', START_SCRIPT, 'sh', opts.hostDir, opts.name],
      {
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
        cwd: '/',
      },
    );
    child.unref();
    return child;
  } finally {
    closeSync(logFd);
  }
}
