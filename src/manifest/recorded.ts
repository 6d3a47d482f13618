import type { Item, Manifest } from './types.ts';

/** The recorded state a plan starts from; undefined for a first deployment. */
export interface RecordedState {
  generation: number;
  manifest: Manifest;
  /** Stateful data lost with an abandoned machine, waiting for a plan that places its service. */
  pendingRestores?: PendingRestore[];
}

/**
 * A stateful service whose machine was abandoned (`strata abandon-machine`): the next plan that
 * places the service on a machine activates it there and restores `snapshot` into it (the
 * newest snapshot of the service when the machine was abandoned; none: it starts empty).
 */
export interface PendingRestore {
  service: string;
  /** The activation module of the lost instance: a snapshot is only restored into the same kind. */
  module: Item['module'];
  /** The abandoned machine it ran on. */
  machine: string;
  /** `file`: the snapshot's name in the service's snapshot directory (`snapshots/DEPLOYMENT/SERVICE/`). */
  snapshot?: { file: string; sha256: string; createdAt: string };
}
