import { resolve, join } from 'node:path';
import type { MachineManifest } from '../manifest/types.ts';
import { pathName } from '../state/stateNames.ts';
import { LocalTarget } from './local.ts';
import { maxSnapshotBytes } from './answers.ts';
import { MachineRuntime } from './machineRuntime.ts';
import { SshTarget } from './ssh.ts';

export interface ConnectOptions {
  /** The controller's state directory; local machines keep their runtime root under it. */
  stateDir: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

/** Opens (lazily) the runtime of a machine, over SSH or on this host. */
export function openRuntime(m: MachineManifest, opts: ConnectOptions): MachineRuntime {
  // A bad STRATA_MAX_SNAPSHOT_BYTES is refused before any machine is contacted, not at a snapshot step.
  maxSnapshotBytes();
  const t = m.target;
  if (t.kind === 'local') {
    const root = t.root ?? join(resolve(opts.stateDir), 'machines', pathName('machine', m.name));
    return new MachineRuntime(new LocalTarget(m.name, opts.commandTimeoutMs), root, m.address);
  }
  const target = new SshTarget({
    machine: m.name,
    host: t.host,
    port: t.port,
    user: t.user,
    hostKey: t.hostKey,
    knownHosts: t.knownHosts,
    identity: t.identity,
    ...(t.trustOnFirstUse ? { trustOnFirstUseFile: join(resolve(opts.stateDir), 'known_hosts') } : {}),
    connectTimeoutMs: opts.connectTimeoutMs,
    commandTimeoutMs: opts.commandTimeoutMs,
  });
  return new MachineRuntime(target, t.root, m.address);
}
