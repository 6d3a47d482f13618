import type { ArtifactEntry } from '../artifact/hash.ts';
import type { Item, MachineManifest } from '../manifest/types.ts';
import type { CredentialPolicy } from './credentials.ts';
import type { SshEnvironment } from './sshEnv.ts';
import type { RunResult } from './target.ts';

/** A machine's own record of a generation: its part of the manifest. */
export interface MachineRecord {
  deployment: string;
  generation: number;
  manifestHash: string;
  /** Null when the machine was retired from the deployment by this generation. */
  machine: MachineManifest | null;
}

/** Another deployment's record on the same machine, as the `claims` verb reports it. */
export interface OtherDeployment {
  deployment: string;
  record: MachineRecord;
  /** The record a transition of it is making true right now (announced with `claim`), not its current one. */
  pending?: true;
}

export interface ItemStatus {
  key: string;
  module: string;
  state: 'running' | 'stopped' | 'present';
  pid?: number;
  /** Why the item differs from what was activated (a dead process, a changed file); absent when it does not. */
  drift?: string;
}

export interface MachineStatus {
  generation: number | null;
  lock: string | null;
  items: ItemStatus[];
}

/** Who asks for a machine lock: the controller's identity, this transition's token, its pid. */
export interface LockRequest {
  owner: string;
  token?: string;
  pid?: number;
  /** How long the lock holds without a renewal (whole seconds on the machine; at least 1 s). */
  leaseMs?: number;
  /** Break the lock if this token holds it (the caller knows that holder is dead). */
  breakToken?: string;
}

/** A machine lock as the runtime reports it; times are seconds since the epoch by the machine's clock. */
export interface LockHolder {
  owner: string;
  token: string;
  pid: number | null;
  takenAt: number;
  expiresAt: number;
  /** The machine's clock when it answered. */
  now: number;
}

export interface BrokenLock extends LockHolder {
  /** `expired`: its lease ran out; `dead-owner`: its holder was known to be dead. */
  why: 'expired' | 'dead-owner';
}

/** An artifact as sent to a machine's store: its hash and its files. */
export interface UploadArtifact {
  hash: string;
  entries: readonly ArtifactEntry[];
}

/**
 * What a transition needs of a machine: one method per runtime verb (docs/runtime.md). The
 * SSH/sh-backed implementation is ShellMachineRuntime (src/targets/machineRuntime.ts); tests use
 * an in-memory one (test/support/fakeRuntime.ts).
 */
export interface MachineRuntime {
  readonly machine: string;
  /** The machine probably has no runtime yet: the next command carries it. */
  expectFresh(): void;
  /** Takes (or renews, with the same token) the lock; says which of `hashes` the store lacks. MACHINE_LOCKED when held. */
  lock(req: string | LockRequest, hashes?: readonly string[], upload?: readonly UploadArtifact[]): Promise<{ broke?: BrokenLock; missing: string[] }>;
  /** Extends the lease; LOCK_LOST when another owner took the lock over. */
  renew(owner: string, token: string, leaseMs: number, opts?: { timeoutMs?: number }): Promise<void>;
  unlock(owner: string, token?: string): Promise<void>;
  upload(artifacts: readonly UploadArtifact[]): Promise<void>;
  activate(item: Item): Promise<RunResult>;
  deactivate(item: Item): Promise<RunResult>;
  /** Writes the item's state, as a tar stream, to `file` on this host. */
  snapshot(item: Item, file: string): Promise<RunResult>;
  restore(item: Item, snapshot: Buffer): Promise<RunResult>;
  /** Records `generation` on the machine and makes it current. */
  commit(generation: number, record: MachineRecord): Promise<void>;
  /** Makes the generation before `generation` current again (an undone commit). */
  uncommit(generation: number): Promise<void>;
  /** The current (or the given) generation's record; undefined when none. */
  recorded(generation?: number): Promise<MachineRecord | undefined>;
  /**
   * The same, asked of a machine that may never have run strata: one that has none of strata's
   * files is left as it is (undefined, nothing installed); one with another version of the
   * runtime gets this one first, as a transition would give it.
   */
  peekRecord(generation?: number): Promise<MachineRecord | undefined>;
  /** Other deployments' records on the machine. */
  others(): Promise<OtherDeployment[]>;
  /** Announces the record a transition is making true; answers the others'. */
  claim(record: MachineRecord): Promise<OtherDeployment[]>;
  status(): Promise<MachineStatus>;
  /** Bytes sent to the machine so far. */
  readonly bytesSent: number;
  close(): Promise<void>;
}

/** How machines are reached (src/targets/connect.ts). */
export interface ConnectOptions {
  /** The controller's state directory; local machines keep their runtime root under it. */
  stateDir: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Under the controller: what this deployment may use on the controller host (src/targets/credentials.ts). */
  credentials?: CredentialPolicy;
  /** The process-wide SSH key and known_hosts, read from the environment at the edge (src/targets/sshEnv.ts). */
  ssh?: SshEnvironment;
  /** The most a snapshot may be (src/targets/answerBounds.ts), as the edge read it; default MAX_SNAPSHOT_BYTES. */
  maxSnapshotBytes?: number;
}

/** Opens (lazily) a machine's runtime for one deployment: made at the edge (CLI, controller), passed down. */
export type RuntimeFactory = (m: MachineManifest, deployment: string, opts: ConnectOptions) => MachineRuntime;
