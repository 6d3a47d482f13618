import { resolve } from 'node:path';
import type { ApplyEvent } from '../apply/events.ts';
import { FileStateStore } from '../state/fileState.ts';
import type { ConnectOptions } from '../targets/connect.ts';
import type { CredentialPolicy } from '../targets/credentials.ts';

/** What every operation needs from its caller (the CLI or the controller). */
export interface Context {
  /** The controller's state directory (generations, journal, local machines' roots). */
  stateDir: string;
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

export function stateStore(ctx: Context): FileStateStore {
  return new FileStateStore(resolve(ctx.stateDir));
}

export function connectOptions(ctx: Context): ConnectOptions {
  return { stateDir: ctx.stateDir, connectTimeoutMs: ctx.connectTimeoutMs, commandTimeoutMs: ctx.commandTimeoutMs, ...(ctx.credentials ? { credentials: ctx.credentials } : {}) };
}
