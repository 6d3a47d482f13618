import { numberedFrom } from '../plan/numbering.ts';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ApplyError, StrataError } from '../errors.ts';
import type { MachineManifest } from '../manifest/types.ts';
import type { Tree } from '../tree/tree.ts';
import type { RecordedState } from '../manifest/recorded.ts';
import { isEmptyPlan } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import { entry, type RecordedWith } from '../state/journal.ts';
import type { GenerationRecord } from '../state/records.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { MachineRuntime } from '../targets/runtimeApi.ts';
import { bytesOf, neededArtifacts, readArtifacts } from './artifacts.ts';
import type { ApplyEvent } from './events.ts';
import { announceClaims, refuseClaimConflicts } from './claims.ts';
import { generationOf } from './generationRecord.ts';
import type { LiveTransitions } from './liveTransitions.ts';
import { mapLimit } from '../lib/mapLimit.ts';
import { brokenReporter, DEFAULT_LEASE_MS, startRenewal, takeLock, type LockSpec } from './machineLocks.ts';
import { messageOf } from '../lib/errorMessage.ts';
import { checkMachinesKnown } from './recordedCheck.ts';
import type { RecoveryResult } from './recoveryResult.ts';
import { runSteps, undoJournaled } from './steps.ts';
import { foldJournal } from './transitionJournal.ts';
import { abandonHint } from './undo.ts';
import { own, table } from '../lib/table.ts';

export interface ApplyOptions {
  state: StateStore;
  /** Where the plan's artifacts are read from (the disk, or the Git commit planned). */
  tree: Tree;
  /** Opens a machine's runtime; called once per machine the plan touches. */
  runtimeFor: (m: MachineManifest) => MachineRuntime;
  /** The transitions running in this process (the edge's; src/apply/liveTransitions.ts). */
  live: LiveTransitions;
  /** Who holds the machine locks: the controller identity (default: the state store's, HOST:ID). */
  owner?: string;
  /** How long a machine lock holds without renewal (default 60 s); renewed every third of it. */
  lockLeaseMs?: number;
  /** Machines handled at once (connect, lock, upload, record). */
  machineConcurrency?: number;
  /** Steps running at once across all machines. */
  stepConcurrency?: number;
  onEvent?: (e: ApplyEvent) => void;
  /** Where the models came from, recorded with the generation. */
  source?: string;
  /** The Git commit they came from, recorded with the generation. */
  commit?: GenerationRecord['commit'];
  rolledBackTo?: number;
  /** Snapshots kept per stateful service (default: the root file's `snapshotsKept`, else 5). */
  snapshotsKept?: number;
}

export interface ApplyResult {
  generation: number;
  steps: number;
  /** Artifact hashes uploaded, per machine. */
  uploaded: Record<string, string[]>;
  bytesSent: number;
  durationMs: number;
  /** What recovery of an interrupted transition did first (src/api/apply.ts), if there was one. */
  recovery?: RecoveryResult;
}

export class StalePlanError extends StrataError {
  constructor(plan: Plan, current: { generation: number | null; manifestHash: string | null }) {
    super(
      'STALE_PLAN',
      `stale plan: it was computed against generation ${plan.basis.generation ?? 'none'}, but generation ${current.generation ?? 'none'} is recorded now; ${plan.kind === 'rollback' ? 'ask for the rollback again, which plans it from the generation recorded now' : 'run strata plan again'}`,
      { planned: plan.basis, recorded: current },
    );
  }
}

/**
 * The transition (docs/reliability.md, "The transition and what it promises"): lock the
 * machines, upload missing artifacts, run the plan's phases in order, each along its graph, record the generation on the machines
 * and in the state store, unlock. A failure undoes every completed step in reverse, so the
 * previous generation runs again, and throws ApplyError naming the step, machine and output.
 */
export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const started = Date.now();
  if (plan.kind === 'preview') {
    throw new ApplyError('PLAN_NOT_APPLIABLE', `this plan of ${plan.deployment} is a preview between two revisions (${plan.revisions ? `${plan.revisions.base} → ${plan.revisions.head}` : 'not the recorded state'}), not a change to the recorded state; plan against the state directory to apply`, { deployment: plan.deployment, kind: plan.kind });
  }
  const recorded = opts.state.current(plan.deployment);
  const basis = { generation: recorded?.generation ?? null, manifestHash: recorded?.manifest.hash ?? null };
  if (basis.generation !== plan.basis.generation || basis.manifestHash !== plan.basis.manifestHash) throw new StalePlanError(plan, basis);
  if (isEmptyPlan(plan)) return { generation: basis.generation ?? 0, steps: 0, uploaded: {}, bytesSent: 0, durationMs: Date.now() - started };
  // A saved plan may have been made before other generations were recorded.
  plan = numberedFrom(plan, opts.state.nextGeneration(plan.deployment));
  const lock: LockSpec = { owner: opts.owner ?? opts.state.identity(), token: randomBytes(6).toString('hex'), leaseMs: opts.lockLeaseMs ?? DEFAULT_LEASE_MS, live: opts.live };
  return opts.live.during(lock.token, () => transition(plan, recorded, opts, lock, started));
}

async function transition(plan: Plan, recorded: RecordedState | undefined, opts: ApplyOptions, lock: LockSpec, started: number): Promise<ApplyResult> {
  const emit = opts.onEvent ?? (() => {});
  const { state } = opts;
  const machineConcurrency = opts.machineConcurrency ?? 32;
  const runtimes = new Map<string, MachineRuntime>();
  // Machines new to the deployment: probably without the runtime and with an empty store.
  const fresh = new Set<string>();
  for (const name of plan.machines) {
    const m = own(plan.desired.machines, name) ?? own(recorded?.manifest.machines, name);
    if (!m) throw new ApplyError('PLAN_INVALID', `plan names machine ${name}, which neither the desired nor the recorded manifest has`);
    const rt = opts.runtimeFor(m);
    if (!own(recorded?.manifest.machines, name)) {
      rt.expectFresh();
      fresh.add(name);
    }
    runtimes.set(name, rt);
  }
  const all = [...runtimes.values()];
  // A port or path another deployment on a machine holds: refused before anything is written
  // there (one read-only command per machine on which the plan claims something new).
  try {
    await refuseClaimConflicts(plan, recorded?.manifest, (name) => runtimes.get(name)!, machineConcurrency);
  } catch (e) {
    await Promise.all(all.map((rt) => rt.close()));
    throw e;
  }
  const locked: MachineRuntime[] = [];
  const uploaded = table<string[]>();
  // A repair plan returns machines to the generation they have: nothing new to record.
  const records = plan.kind !== 'repair';
  const lost: string[] = [];
  const record: RecordedWith = {
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.commit ? { commit: opts.commit } : {}),
    ...(opts.rolledBackTo !== undefined ? { rolledBackTo: opts.rolledBackTo } : {}),
  };
  // Write-ahead: the whole plan, the lock owner and token are on disk before any machine is touched.
  state.beginJournal(plan.deployment, entry.begin({ generation: plan.generation, basis: plan.basis, owner: lock.owner, token: lock.token, pid: process.pid, host: hostname(), leaseMs: lock.leaseMs, plan, record }));
  const onBroken = brokenReporter(state, plan.deployment, emit);
  let stopRenewal = () => {};
  let stepsUndone = false;
  let outcome: 'committed' | 'rolled-back' | undefined;
  try {
    emit({ kind: 'lock', machines: plan.machines });
    // Taking a machine's lock also says which of its artifacts its store lacks (one round
    // trip); a machine new to the deployment gets every artifact it needs with the lock command
    // instead (its store is taken to be empty; what it has already is dropped there).
    const missingOn = new Map<string, string[]>();
    await mapLimit(all, machineConcurrency, async (rt) => {
      const needed = neededArtifacts(plan, rt.machine);
      const upload = fresh.has(rt.machine) && needed.length ? await readArtifacts(plan.desired, needed, opts.tree) : undefined;
      const { missing } = await takeLock(rt, lock, onBroken(rt.machine), needed, upload);
      locked.push(rt);
      if (upload) {
        emit({ kind: 'upload', machine: rt.machine, artifacts: upload.length, bytes: bytesOf(upload) });
        uploaded[rt.machine] = needed;
      }
      missingOn.set(rt.machine, missing);
    });
    // Before anything changes: do the machines run a generation of this deployment that the state
    // directory does not know (lost or old state)? One round trip on each locked connection.
    const answers = await mapLimit(all, machineConcurrency, async (rt) => ({ machine: rt.machine, record: await rt.recorded().catch(() => undefined) }));
    checkMachinesKnown(plan.deployment, answers, state);
    // Under the locks, before any artifact is sent or step runs: announce what this transition
    // claims, refused if a transition of another deployment running now claims it first.
    await announceClaims(plan, recorded?.manifest, (name) => runtimes.get(name)!, machineConcurrency);
    stopRenewal = startRenewal(() => locked, lock, (machine, e) => {
      lost.push(machine);
      state.journal(plan.deployment, entry.lockLost(machine, e.message));
      emit({ kind: 'lock-lost', machine, error: e.message });
    });

    await mapLimit(all, machineConcurrency, async (rt) => {
      const missing = missingOn.get(rt.machine) ?? [];
      if (missing.length === 0) return;
      const artifacts = await readArtifacts(plan.desired, missing, opts.tree);
      emit({ kind: 'upload', machine: rt.machine, artifacts: missing.length, bytes: bytesOf(artifacts) });
      await rt.upload(artifacts);
      uploaded[rt.machine] = missing;
    });

    try {
      await runSteps(plan, { state, runtimes, emit, stepConcurrency: opts.stepConcurrency, snapshotsKept: opts.snapshotsKept });
    } catch (e) {
      stepsUndone = true;
      throw e;
    }
    if (lost.length) {
      throw new ApplyError('LOCK_LOST', `lost the lock of ${lost.join(', ')} during the transition (another owner broke it); generation ${plan.generation} is not recorded`, { machines: lost });
    }

    const touched = plan.machines;
    if (records) {
      state.journal(plan.deployment, entry.commit(plan.generation, touched));
      await mapLimit(touched, machineConcurrency, async (name) => {
        const machine = own(plan.desired.machines, name);
        await runtimes.get(name)!.commit(plan.generation, { deployment: plan.deployment, generation: plan.generation, manifestHash: plan.desired.hash, machine: machine ?? null });
      });
      state.record(plan.deployment, generationOf(plan, record));
    }
    state.journal(plan.deployment, entry.outcome('committed', plan.generation));
    outcome = 'committed';
    emit({ kind: 'commit', generation: plan.generation, machines: touched.length });
  } catch (e) {
    if (stepsUndone) throw e; // runSteps undid them already
    // A failure outside the steps (a lock, an upload, the machines' commit): undo what the journal says was done.
    const j = foldJournal(state.readJournal(plan.deployment));
    if (!j.begin || (j.started.length === 0 && !j.commitStarted)) {
      state.journal(plan.deployment, entry.outcome('rolled-back', plan.generation));
      throw e;
    }
    const { undone, errors, unreachable } = await undoJournaled(plan, { state, runtimes, emit });
    const err = e instanceof StrataError ? e : new ApplyError('APPLY_FAILED', messageOf(e));
    const outcomeText = errors.length
      ? `rollback incomplete: ${errors.join('; ')}${abandonHint(plan.deployment, unreachable)}`
      : `rolled back ${undone} step${undone === 1 ? '' : 's'}${j.commitStarted && records ? ' and the machines\' generation records' : ''}; the previous generation is running`;
    throw new ApplyError(err.code, `${err.message}\n${outcomeText}`, { ...err.data, rolledBack: errors.length === 0, rollbackErrors: errors });
  } finally {
    stopRenewal();
    await mapLimit(locked, machineConcurrency, (rt) => rt.unlock(lock.owner, lock.token).catch(() => undefined));
    if (locked.length) emit({ kind: 'unlock', machines: locked.map((r) => r.machine).sort() });
    // With the outcome written and the locks released, the journal has done its work. Without
    // an outcome (an undo that could not reach a machine), it stays for recovery.
    outcome ??= foldJournal(state.readJournal(plan.deployment)).outcome;
    if (outcome) state.clearJournal(plan.deployment);
    await Promise.all(all.map((rt) => rt.close()));
  }
  return {
    generation: plan.generation,
    steps: plan.steps.length,
    uploaded,
    bytesSent: all.reduce((n, rt) => n + rt.bytesSent, 0),
    durationMs: Date.now() - started,
  };
}
