import { existsSync } from 'node:fs';
import { TestnetError } from '../errors.ts';
import { SSHD, SSH_KEYGEN } from './layout.ts';
import { findUnshare } from './namespace.ts';

export const MACHINE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
export const LOOPBACK_SUBNET = /^127\.\d{1,3}\.\d{1,3}$/;
export const DEFAULT_SUBNET = '127.0.1';
export const SSH_PORT = 22;

export function checkRoot(): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new TestnetError(
      'TESTNET_NEEDS_ROOT',
      'strata testnet needs root (it starts sshd, makes mount namespaces and binds loopback ports); run it as root or use target: local machines',
    );
  }
}

/** Checks the tools testnet runs; returns the path of `unshare`. */
export function checkTools(): { unshare: string } {
  if (!existsSync(SSHD)) {
    throw new TestnetError('TESTNET_NO_SSHD', `strata testnet needs OpenSSH's server at ${SSHD}; install it with \`apt-get install openssh-server\``, { path: SSHD });
  }
  if (!existsSync(SSH_KEYGEN)) {
    throw new TestnetError('TESTNET_NO_SSH_KEYGEN', `strata testnet needs ${SSH_KEYGEN}; install it with \`apt-get install openssh-client\``, { path: SSH_KEYGEN });
  }
  const unshare = findUnshare();
  if (!unshare) {
    throw new TestnetError('TESTNET_NO_UNSHARE', 'strata testnet needs `unshare` (util-linux); install it with `apt-get install util-linux`');
  }
  return { unshare };
}

export function validateMachines(machines: string[]): void {
  if (machines.length === 0) throw new TestnetError('TESTNET_NO_MACHINES', 'strata testnet needs at least one machine');
  if (machines.length > 254) {
    throw new TestnetError('TESTNET_TOO_MANY_MACHINES', `a testnet has at most 254 machines (one per address in the subnet), got ${machines.length}`);
  }
  const seen = new Set<string>();
  for (const m of machines) {
    if (!MACHINE_NAME.test(m)) {
      throw new TestnetError(
        'TESTNET_INVALID_MACHINE',
        `invalid machine name ${JSON.stringify(m)}: it must start with a letter and hold only letters, digits, '_' and '-' (at most 63 characters)`,
        { machine: m },
      );
    }
    if (seen.has(m)) throw new TestnetError('TESTNET_INVALID_MACHINE', `machine ${m} is listed twice`, { machine: m });
    seen.add(m);
  }
}

/** Only loopback subnets (127.X.Y) are allowed: hosts get 127.X.Y.1 onwards. */
export function validateSubnet(subnet: string): void {
  const ok = LOOPBACK_SUBNET.test(subnet) && subnet.split('.').every((o) => Number(o) <= 255);
  if (!ok) {
    throw new TestnetError(
      'TESTNET_INVALID_SUBNET',
      `invalid testnet subnet ${JSON.stringify(subnet)}: it must be a loopback /24 prefix such as 127.0.1 (hosts get 127.0.1.1, 127.0.1.2, ...)`,
      { subnet },
    );
  }
}
