import type { ApplyEvent } from '../apply/events.ts';
import type { LiveTransitions } from '../apply/liveTransitions.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { CredentialPolicy } from '../targets/credentials.ts';
import type { ConnectOptions, RuntimeFactory } from '../targets/runtimeApi.ts';
import type { SshEnvironment } from '../targets/sshEnv.ts';

/** What every operation needs from its caller (the CLI or the controller). */
export interface Context {
  /** The controller's state directory (generations, journal, local machines' roots). */
  stateDir: string;
  /**
   * What the operations work with, made once at the edge (src/api/services.ts, the controller)
   * and passed down: the state store of `stateDir`, how machines' runtimes are opened, and the
   * transitions running in this process. Never made here, so tests can pass fakes.
   */
  services: Services;
  /** The deployment's root file on disk, when known: named in hints about where its state may be. */
  rootFile?: string;
  /** Set by the controller: hints name its API instead of the CLI. */
  controller?: boolean;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** How long a machine lock holds without renewal (default 60 s). */
  lockLeaseMs?: number;
  /** Machines handled at once during apply (default 32). */
  parallel?: number;
  onEvent?: (e: ApplyEvent) => void;
  /**
   * Set by the controller, per deployment: which files on this host the models may name to
   * reach machines, the deployment's own key and known_hosts, whether local machines are
   * allowed. Unset (the CLI, run by the operator): the models may name any file.
   */
  credentials?: CredentialPolicy;
}

export interface Services {
  state: StateStore;
  openRuntime: RuntimeFactory;
  live: LiveTransitions;
  /** The process-wide SSH key and known_hosts, read from the environment by the edge (src/targets/sshEnv.ts). */
  ssh: SshEnvironment;
  /** STRATA_MAX_SNAPSHOT_BYTES as the edge read it (src/targets/answerBounds.ts); default MAX_SNAPSHOT_BYTES. */
  maxSnapshotBytes?: number;
}

export function stateStore(ctx: Context): StateStore {
  return ctx.services.state;
}

export function connectOptions(ctx: Context): ConnectOptions {
  return { stateDir: ctx.stateDir, connectTimeoutMs: ctx.connectTimeoutMs, commandTimeoutMs: ctx.commandTimeoutMs, ...(ctx.credentials ? { credentials: ctx.credentials } : {}), ssh: ctx.services.ssh, ...(ctx.services.maxSnapshotBytes !== undefined ? { maxSnapshotBytes: ctx.services.maxSnapshotBytes } : {}) };
}
