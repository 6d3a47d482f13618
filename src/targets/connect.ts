import { resolve, join } from 'node:path';
import type { MachineManifest } from '../manifest/types.ts';
import { pathName } from '../state/stateNames.ts';
import { LocalTarget } from './local.ts';
import { ShellMachineRuntime } from './machineRuntime.ts';
import type { ConnectOptions } from './runtimeApi.ts';
import { refusedLocalMessage } from './credentials.ts';
import { RefusedTarget } from './refusedTarget.ts';
import { SshTarget } from './ssh.ts';

export type { ConnectOptions } from './runtimeApi.ts';

/** Opens (lazily) the runtime of a machine for one deployment, over SSH or on this host. */
export function openRuntime(m: MachineManifest, deployment: string, opts: ConnectOptions): ShellMachineRuntime {
  const t = m.target;
  if (t.kind === 'local') {
    // Checked when the models are loaded; this holds for recorded generations too (rollback, recovery, drift).
    if (opts.credentials && !opts.credentials.localMachines) {
      return new ShellMachineRuntime(new RefusedTarget(m.name, refusedLocalMessage(opts.credentials.deployment)), t.root ?? '/nonexistent', m.address, deployment);
    }
    const root = t.root ?? join(resolve(opts.stateDir), 'machines', pathName('machine', m.name));
    return new ShellMachineRuntime(new LocalTarget(m.name, opts.commandTimeoutMs), root, m.address, deployment, opts.maxSnapshotBytes);
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
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.ssh ? { env: opts.ssh } : {}),
  });
  return new ShellMachineRuntime(target, t.root, m.address, deployment, opts.maxSnapshotBytes);
}
