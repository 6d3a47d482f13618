import path from 'node:path';

/**
 * Where things live: in a testnet DIR on the real filesystem, in each host's directory,
 * and at fixed paths inside a host's mount namespace.
 *
 * DIR/
 *   testnet.json             state; written first, so `down` knows the DIR is a testnet's
 *   network.physical.yaml    strata physical network file
 *   id_ed25519, .pub         client key pair authorized on every host
 *   hosts/NAME/              one host (`TestnetHost.dir`)
 *     sshd.log               sshd's stderr
 *     sshd/                  sshd_config, host key (0700)
 *     fs/var/lib/strata      bound over /var/lib/strata inside the host
 *     fs/root                bound over /root (clean home, .ssh/authorized_keys)
 *     fs/tmp                 bound over /tmp
 */
export const STATE_FILE = 'testnet.json';
export const PHYSICAL_NETWORK_FILE = 'network.physical.yaml';
export const IDENTITY_FILE = 'id_ed25519';
export const HOSTS_DIR = 'hosts';

/** Every entry `testnetUp` creates directly in DIR; `testnetDown` removes exactly these. */
export const DIR_ENTRIES = [STATE_FILE, `${STATE_FILE}.tmp`, PHYSICAL_NETWORK_FILE, IDENTITY_FILE, `${IDENTITY_FILE}.pub`, HOSTS_DIR];

export const SSHD = '/usr/sbin/sshd';
export const SSH_KEYGEN = '/usr/bin/ssh-keygen';
export const UNSHARE_CANDIDATES = ['/usr/bin/unshare', '/bin/unshare'];
/** sshd's privilege separation directory; sshd refuses to start without it. */
export const PRIVSEP_DIR = '/run/sshd';

/** Paths bound over inside each host, and the subdirectory of the host's `fs/` that backs them. */
export const BOUND_PATHS = ['/var/lib/strata', '/root', '/tmp'] as const;

/**
 * Fixed mount point inside every host's namespace. The host's directory is bound here first
 * (so later binds cannot hide it, wherever DIR is), the per-path binds are taken from it, and
 * finally the host's `sshd/` directory is bound over it: sshd's config and host key stay
 * reachable at `/run/strata-testnet/...` for the per-connection re-exec of sshd.
 */
export const NS_CONF_DIR = '/run/strata-testnet';
export const NS_SSHD_CONFIG = `${NS_CONF_DIR}/sshd_config`;
export const HOST_KEY_FILE = 'ssh_host_ed25519_key';

export function hostDir(dir: string, name: string): string {
  return path.join(dir, HOSTS_DIR, name);
}

export function hostLayout(hostDirectory: string) {
  const fs = path.join(hostDirectory, 'fs');
  return {
    log: path.join(hostDirectory, 'sshd.log'),
    sshdDir: path.join(hostDirectory, 'sshd'),
    sshdConfig: path.join(hostDirectory, 'sshd', 'sshd_config'),
    hostKey: path.join(hostDirectory, 'sshd', HOST_KEY_FILE),
    fs,
    strata: path.join(fs, 'var', 'lib', 'strata'),
    root: path.join(fs, 'root'),
    sshDir: path.join(fs, 'root', '.ssh'),
    authorizedKeys: path.join(fs, 'root', '.ssh', 'authorized_keys'),
    tmp: path.join(fs, 'tmp'),
  };
}
