import type { MachineManifest } from '../manifest/types.ts';

// What a machine's runtime answers, as the parsers of answers.ts return it.

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
