/**
 * The process-wide SSH settings strata takes from its environment (docs/cli.md): the key
 * (STRATA_SSH_KEY_FILE, else the key text in STRATA_SSH_KEY) and the known_hosts file
 * (STRATA_KNOWN_HOSTS). Read here only, once, by the edge (src/api/services.ts, the
 * controller), and handed to the SSH targets as options.
 */
export interface SshEnvironment {
  keyFile?: string;
  /** The private key's text itself. */
  key?: string;
  knownHosts?: string;
}

export function sshEnvironment(env: NodeJS.ProcessEnv = process.env): SshEnvironment {
  return {
    ...(env.STRATA_SSH_KEY_FILE !== undefined ? { keyFile: env.STRATA_SSH_KEY_FILE } : {}),
    ...(env.STRATA_SSH_KEY ? { key: env.STRATA_SSH_KEY } : {}),
    ...(env.STRATA_KNOWN_HOSTS ? { knownHosts: env.STRATA_KNOWN_HOSTS } : {}),
  };
}
