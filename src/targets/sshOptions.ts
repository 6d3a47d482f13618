import type { CredentialPolicy } from './credentials.ts';
import type { SshEnvironment } from './sshEnv.ts';

/** How one machine is reached over SSH (src/targets/ssh.ts), and with which credentials (src/targets/sshCredentials.ts). */
export interface SshTargetOptions {
  machine: string;
  host: string;
  port: number;
  user: string;
  /** Pinned public host key line; wins over knownHosts. */
  hostKey?: string;
  /** known_hosts file to check the host key against (default env.knownHosts, else ~/.ssh/known_hosts). */
  knownHosts?: string;
  /** Private key file; else env.keyFile, else the key text env.key. */
  identity?: string;
  /** The private key itself (read from a secret by the caller); wins over identity. */
  privateKey?: Buffer | string;
  /**
   * Trust on first use, only when asked for: with no pinned key and no known_hosts entry, the
   * key presented first is accepted and written to this file; later connections must match it.
   */
  trustOnFirstUseFile?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Channels open at once on the connection; OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
  /**
   * Under the controller, the deployment's credential policy: `identity` and `knownHosts`
   * (from the model) are used only inside its allowedFiles, else refused unread; without them
   * its own key and known_hosts are used, and the process-wide ones (STRATA_SSH_KEY_FILE,
   * STRATA_SSH_KEY, STRATA_KNOWN_HOSTS, ~/.ssh/known_hosts) only when it configures none.
   */
  credentials?: CredentialPolicy;
  /** The process-wide key and known_hosts (src/targets/sshEnv.ts); none when not given. */
  env?: SshEnvironment;
}
