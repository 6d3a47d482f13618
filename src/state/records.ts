import type { Manifest } from '../manifest/types.ts';
import type { PendingRestore } from '../manifest/recorded.ts';

/** What the state store holds per generation (src/state/stateStore.ts). */
export interface GenerationRecord {
  generation: number;
  createdAt: string;
  manifest: Manifest;
  /** Set when this generation was made by `strata rollback`. */
  rolledBackTo?: number;
  /** Where the models came from: a file path, or the repository. */
  source?: string;
  /** Set by `strata adopt --partial`: the manifest hash the machines recorded for this generation, which the adopted parts do not add up to. */
  adoptedFrom?: { manifestHash: string };
  /** The Git commit the models were read from, when they came from Git. */
  commit?: { sha: string; author: { name: string; email: string }; message: string; time: string };
  /** Set when this generation was made by `strata abandon-machine`: the audit record. */
  abandoned?: AbandonRecord;
  /** Stateful data lost with an abandoned machine, restored when a plan places its service again. */
  pendingRestores?: PendingRestore[];
}

/** Who gave up on a machine, when and why, and what left the recorded state with it. */
export interface AbandonRecord {
  machine: string;
  by: string;
  at: string;
  reason: string;
  /** Keys of the items recorded on the machine, which this generation no longer has. */
  items: string[];
  /** The generation it was taken out of. */
  from: number;
}
