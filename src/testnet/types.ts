/** One test host: an sshd on its own loopback address, in its own mount namespace. */
export interface TestnetHost {
  /** Machine name, as in the models. */
  name: string;
  /** Loopback address the host's sshd listens on, e.g. `127.0.1.1`. */
  address: string;
  port: number;
  /** Public host key line `ssh-ed25519 AAAA...`, without comment. */
  hostKey: string;
  /** PID of the host's sshd listener (a direct child of the process that ran `testnetUp`). */
  pid: number;
  /** This host's directory on the real filesystem. */
  dir: string;
  /** The sshd's mount namespace, as `readlink /proc/PID/ns/mnt` shows it, e.g. `mnt:[4026532177]`. */
  mountNs: string;
}

export interface Testnet {
  dir: string;
  hosts: TestnetHost[];
  /** Private key of the one client key pair authorized on every host. */
  identityFile: string;
  /** The strata physical network file describing the hosts. */
  physicalNetworkFile: string;
}
