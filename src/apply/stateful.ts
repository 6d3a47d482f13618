import { join } from 'node:path';
import { ApplyError } from '../errors.ts';
import type { Item } from '../manifest/types.ts';
import type { Plan, Step } from '../plan/types.ts';
import { rmSync } from 'node:fs';
import { DEFAULT_SNAPSHOTS_KEPT, SnapshotStore, type SnapshotMeta, type StagedSnapshot, type StoredSnapshot } from '../state/snapshots.ts';
import type { MachineRuntime } from '../targets/runtimeApi.ts';
import type { RunResult } from '../targets/target.ts';
import type { ApplyEvent } from './events.ts';

/** Steps that carry a stateful service's data rather than (de)activating it. */
export function isStatefulStep(step: Step): boolean {
  return step.action === 'snapshot' || step.action === 'restore';
}

/** What apply needs of a step's outcome: the runtime's exit code and its error output. */
export interface StepOutcome {
  code: number;
  stderr: string;
}

/**
 * The snapshot and restore steps of one transition. A snapshot step pulls the item's state off
 * its machine (the runtime's `snapshot` verb) and stores it in the controller's state directory;
 * a restore step sends the snapshot its `source` step took in this same transition to the new
 * instance (`restore` verb); a restore of data lost with an abandoned machine sends the stored
 * snapshot its step names instead. Neither has anything to undo on rollback: the snapshot is a copy,
 * and the old instance's data was never dropped, so re-activating it brings the service back.
 */
export class StatefulSteps {
  private readonly taken = new Map<string, StoredSnapshot>();

  constructor(
    private readonly plan: Plan,
    private readonly store: SnapshotStore,
    private readonly kept: number,
    private readonly emit: (e: ApplyEvent) => void = () => {},
  ) {}

  static forPlan(plan: Plan, stateDir: string, kept: number | undefined, emit?: (e: ApplyEvent) => void): StatefulSteps {
    return new StatefulSteps(plan, new SnapshotStore(stateDir), kept ?? plan.desired.snapshotsKept ?? DEFAULT_SNAPSHOTS_KEPT, emit);
  }

  async run(step: Step, rt: MachineRuntime): Promise<StepOutcome> {
    return step.action === 'snapshot' ? this.snapshot(step, rt) : this.restore(step, rt);
  }

  private async snapshot(step: Step, rt: MachineRuntime): Promise<StepOutcome> {
    const moves = this.plan.steps.some((s) => s.action === 'restore' && s.source === step.id);
    const { r, staged } = await pullSnapshot(rt, step.item, this.store, this.plan.deployment);
    if (!staged) return { code: r.code, stderr: r.stderr };
    const stored = storeSnapshot(this.store, step.item, staged, {
      deployment: this.plan.deployment,
      generation: this.plan.generation,
      reason: moves ? 'move' : 'remove',
      kept: this.kept,
      protect: new Set([...this.taken.values()].map((s) => s.file)),
    });
    this.taken.set(step.id, stored);
    this.emit({ kind: 'snapshot', step, file: stored.file, bytes: stored.meta.size });
    return { code: 0, stderr: '' };
  }

  /** A snapshot named by a plan: only a `.snap` file in the service's own snapshot directory. */
  private storedSnapshot(step: Step, name: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.snap$/.test(name)) {
      throw new ApplyError('PLAN_INVALID', `restore ${step.item.name} on ${step.machine} (step ${step.id}): "${name}" is not the name of a snapshot`, { step: step.id, machine: step.machine });
    }
    return join(this.store.serviceDir(this.plan.deployment, step.item.name), name);
  }

  private async restore(step: Step, rt: MachineRuntime): Promise<StepOutcome> {
    // Data lost with an abandoned machine comes from the stored snapshot the plan names.
    const source = step.source === undefined ? (step.snapshot === undefined ? undefined : { file: this.storedSnapshot(step, step.snapshot) }) : this.taken.get(step.source);
    if (!source) {
      throw new ApplyError('SNAPSHOT_MISSING', `restore ${step.item.name} on ${step.machine} (step ${step.id}): no snapshot was taken by step ${step.source ?? '(none named)'} in this transition`, {
        step: step.id,
        machine: step.machine,
      });
    }
    const { bytes } = checkedSnapshot(this.store, source.file, step.item);
    const r = await rt.restore(step.item, bytes);
    if (r.code === 0) this.emit({ kind: 'restore', step, file: source.file, bytes: bytes.byteLength });
    return { code: r.code, stderr: r.stderr };
  }
}

/** Stores snapshot bytes with their sidecar and prunes the service's older snapshots down to `kept`. */
export function storeSnapshot(
  store: SnapshotStore,
  item: Item,
  bytes: Buffer | StagedSnapshot,
  opts: { deployment: string; generation: number; reason: SnapshotMeta['reason']; kept: number; protect?: ReadonlySet<string> },
): StoredSnapshot & { meta: SnapshotMeta } {
  const stored = store.save({ deployment: opts.deployment, service: item.name, machine: item.machine, item: item.key, module: item.module, generation: opts.generation, reason: opts.reason }, bytes);
  store.prune(opts.deployment, item.name, opts.kept, new Set([...(opts.protect ?? []), stored.file]));
  return stored;
}

/** A stored snapshot's bytes, checked against its sidecar, refused for an item of another module. */
export function checkedSnapshot(store: SnapshotStore, file: string, item: Item): { bytes: Buffer; meta: SnapshotMeta } {
  const read = store.read(file);
  if (read.meta.module !== item.module) {
    throw new ApplyError('SNAPSHOT_MISMATCH', `the snapshot ${file} was taken of a ${read.meta.module} item; ${item.name} on ${item.machine} is a ${item.module}`, { file });
  }
  return read;
}

/** Takes a snapshot of an active item now and stores it (for `strata snapshot`). */
export async function takeSnapshot(rt: MachineRuntime, item: Item, store: SnapshotStore, opts: { deployment: string; generation: number; kept: number }): Promise<StoredSnapshot & { meta: SnapshotMeta }> {
  const { r, staged } = await pullSnapshot(rt, item, store, opts.deployment);
  if (!staged) {
    throw new ApplyError('SNAPSHOT_FAILED', `snapshot of ${item.name} on ${item.machine} failed: ${r.stderr.trim() || `exit ${r.code}`}`, { machine: item.machine, item: item.name, output: r.stderr.trim() });
  }
  return storeSnapshot(store, item, staged, { ...opts, reason: 'manual' });
}

/** Restores a stored snapshot into an active item (for `strata restore`). */
export async function restoreSnapshot(rt: MachineRuntime, item: Item, store: SnapshotStore, file: string): Promise<{ bytes: number }> {
  const { bytes } = checkedSnapshot(store, file, item);
  const r = await rt.restore(item, bytes);
  if (r.code !== 0) {
    throw new ApplyError('RESTORE_FAILED', `restore of ${item.name} on ${item.machine} failed: ${r.stderr.trim() || `exit ${r.code}`}`, { machine: item.machine, item: item.name, output: r.stderr.trim() });
  }
  return { bytes: bytes.byteLength };
}

/**
 * Runs `snapshot` on the machine with its answer streamed into a staging file of the store (so
 * a snapshot of up to the bound never sits in the controller's memory); `staged` is that file
 * when the command succeeded, else the file is gone and `r` says why.
 */
async function pullSnapshot(rt: MachineRuntime, item: Item, store: SnapshotStore, deployment: string): Promise<{ r: RunResult; staged?: StagedSnapshot }> {
  const file = store.stagingFile(deployment, item.name);
  let r: RunResult;
  try {
    r = await rt.snapshot(item, file);
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  }
  if (r.code === 0 && r.stdoutFile) return { r, staged: r.stdoutFile };
  rmSync(file, { force: true });
  return { r: r.code === 0 ? { ...r, code: 1, stderr: 'the snapshot was not received' } : r };
}
