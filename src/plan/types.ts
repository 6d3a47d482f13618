import type { SourcePos } from '../errors.ts';
import type { PendingRestore } from '../manifest/recorded.ts';
import type { Item, Manifest } from '../manifest/types.ts';

/**
 * A plan: the diff between a recorded manifest and a desired one, as ordered steps. Pure data,
 * serialised as JSON by `strata plan --format json` (docs/plan-format.md); apply executes it
 * and nothing else.
 */
export interface Plan {
  /** Format version of this document (docs/plan-format.md; src/plan/format.ts reads older ones). */
  format: 'strata-plan/2';
  /** What the plan does, and so how apply treats it (PlanKind). */
  kind: PlanKind;
  deployment: string;
  /**
   * The recorded state the plan was computed from. Apply refuses the plan when the recorded
   * state has moved on since ("stale plan").
   */
  basis: { generation: number | null; manifestHash: string | null };
  /** The generation apply records when every step succeeds. */
  generation: number;
  /** The manifest apply makes true. */
  desired: Manifest;
  /** What changes, one entry per item, for people. */
  changes: Change[];
  /** What apply does, in order; steps whose `after` are done may run in parallel. */
  steps: Step[];
  /** Artifacts the desired state needs on each machine that its recorded state did not use. */
  uploads: Record<string, { hash: string; size: number }[]>;
  /** Every machine a step or an upload touches, sorted. */
  machines: string[];
  /** The root file (absolute) a plan saved by `strata plan --out` was made from: `apply PLAN.json` finds its state beside it. */
  root?: string;
  /** For plans between Git revisions (`plan --repo`): what was compared, in words. */
  revisions?: { base: string; head: string };
  /**
   * Where the models make each claim (a port on an address, a placed path) this plan adds on a
   * machine, by claim id (src/manifest/claims.ts): a refusal because another deployment on the
   * machine holds it names this model field. Absent for plans not made from models (rollback).
   */
  claimSources?: Record<string, SourcePos & { field: string }>;

  /**
   * Data of stateful services lost with an abandoned machine that this plan does not place
   * anywhere yet: recorded with the generation, so a later plan that places the service
   * restores it. Absent when there are none.
   */
  pendingRestores?: PendingRestore[];
}

/**
 * `transition`: from the recorded generation to the models' manifest, recorded as a new
 * generation; `rollback`: the same, to an earlier generation's manifest; `destroy`: the same, to
 * a manifest without items; `repair`: puts drifted items back as the recorded generation has
 * them and records nothing new (the machines keep the generation they have); `preview`: what
 * merging a revision would do, compared with another revision rather than the recorded state:
 * for reading only, apply refuses it.
 */
export type PlanKind = 'transition' | 'rollback' | 'destroy' | 'repair' | 'preview';

/** add `+`, remove `-`, upgrade `~` (same machine, new content), move `>` (other machine). */
export type ChangeAction = 'add' | 'remove' | 'upgrade' | 'move';

export interface Change {
  action: ChangeAction;
  layer: Item['layer'];
  name: string;
  /** Machine(s) the item runs on after the change (for remove: where it ran). */
  machine: string;
  /** For a move: the machine it leaves. */
  from?: string;
  /** Why, in words: "artifact changed", "address of hello-world-server changed", … */
  reasons: string[];
}

export type StepPhase = 'infrastructure' | 'deactivate' | 'activate' | 'cleanup';

/**
 * `snapshot` copies a stateful item's data off its machine into the controller's state
 * directory (before the item is deactivated there); `restore` puts that snapshot into the item
 * activated on its new machine (before its dependents are activated).
 */
export type StepAction = 'activate' | 'deactivate' | 'snapshot' | 'restore';

export interface Step {
  /** Stable within the plan: "1", "2", … in order. */
  id: string;
  phase: StepPhase;
  action: StepAction;
  machine: string;
  /** The item activated, or the recorded item deactivated (or snapshotted). */
  item: Item;
  /** Ids of steps that must finish first, and so the answer to "why is it waiting". */
  after: string[];
  /** For a restore: the id of the snapshot step whose snapshot it restores. */
  source?: string;
  /**
   * For a restore of data lost with an abandoned machine (no snapshot step in this plan): the
   * name of the stored snapshot it restores, in the service's snapshot directory of the state
   * directory (nothing else is read), checked against its sidecar at apply.
   */
  snapshot?: string;
}

export const CHANGE_SYMBOL: Record<ChangeAction, string> = { add: '+', remove: '-', upgrade: '~', move: '>' };
