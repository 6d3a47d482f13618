import { numberedFrom } from '../plan/numbering.ts';
import { posix } from 'node:path';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ApplyError, StrataError } from '../errors.ts';
import { hashArtifact } from '../artifact/hash.ts';
import { readArtifact } from '../artifact/read.ts';
import { DeploymentDir } from '../source/realPath.ts';
import type { ArtifactRef, MachineManifest, Manifest } from '../manifest/types.ts';
import type { Tree } from '../source/tree.ts';
import { isEmptyPlan } from '../plan/diff.ts';
import type { Plan, Step } from '../plan/types.ts';
import type { FileStateStore, GenerationRecord } from '../state/fileState.ts';
import type { MachineRuntime, UploadArtifact } from '../targets/machineRuntime.ts';
import type { ApplyEvent, RecoveryResult } from './events.ts';
import { announceClaims, refuseClaimConflicts } from './claims.ts';
import { mapLimit } from '../lib/mapLimit.ts';
import { messageOf } from '../lib/errorMessage.ts';
import { DEFAULT_LEASE_MS, liveTokens, startRenewal, takeLock, type LockSpec } from './machineLocks.ts';
import { abandonHint, parseJournal, undoTransition } from './recover.ts';
import { checkMachinesKnown } from './recordedCheck.ts';
import { isStatefulStep, StatefulSteps } from './stateful.ts';
import { walkGraph } from './walk.ts';
import { own, table } from '../lib/table.ts';

export interface ApplyOptions {
  state: FileStateStore;
  /** Where the plan's artifacts are read from (the disk, or the Git commit planned). */
  tree: Tree;
  /** Opens a machine's runtime; called once per machine the plan touches. */
  runtimeFor: (m: MachineManifest) => MachineRuntime;
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
      `stale plan: it was computed against generation ${plan.basis.generation ?? 'none'}, but generation ${current.generation ?? 'none'} is recorded now; run strata plan again`,
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
  const emit = opts.onEvent ?? (() => {});
  const recorded = opts.state.current(plan.deployment);
  const basis = { generation: recorded?.generation ?? null, manifestHash: recorded?.manifest.hash ?? null };
  if (basis.generation !== plan.basis.generation || basis.manifestHash !== plan.basis.manifestHash) throw new StalePlanError(plan, basis);
  if (isEmptyPlan(plan)) return { generation: basis.generation ?? 0, steps: 0, uploaded: {}, bytesSent: 0, durationMs: Date.now() - started };
  // A saved plan may have been made before other generations were recorded.
  plan = numberedFrom(plan, opts.state.nextGeneration(plan.deployment));

  const machineConcurrency = opts.machineConcurrency ?? 32;
  const owner = opts.owner ?? opts.state.identity();
  const lock: LockSpec = { owner, token: randomBytes(6).toString('hex'), leaseMs: opts.lockLeaseMs ?? DEFAULT_LEASE_MS };
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
    await Promise.all(all.map((rt) => rt.target.close()));
    throw e;
  }
  const locked: MachineRuntime[] = [];
  const uploaded = table<string[]>();
  // A repair plan (src/api/repair.ts) returns machines to the generation they have: nothing new to record.
  const repair = plan.generation === plan.basis.generation;
  const lost: string[] = [];
  // Write-ahead: the whole plan, the lock owner and token are on disk before any machine is touched.
  opts.state.beginJournal(plan.deployment, {
    generation: plan.generation,
    basis: plan.basis,
    owner,
    token: lock.token,
    pid: process.pid,
    host: hostname(),
    leaseMs: lock.leaseMs,
    plan,
    record: {
      ...(opts.source ? { source: opts.source } : {}),
      ...(opts.commit ? { commit: opts.commit } : {}),
      ...(opts.rolledBackTo !== undefined ? { rolledBackTo: opts.rolledBackTo } : {}),
    },
  });
  liveTokens.add(lock.token);
  let stopRenewal = () => {};
  let stepsRolledBack = false;
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
      const { missing } = await takeLock(
        rt,
        lock,
        (b) => {
          opts.state.journal(plan.deployment, { event: 'lock-broken', machine: rt.machine, holder: b, why: b.why });
          emit({ kind: 'lock-broken', machine: rt.machine, holder: b, why: b.why });
        },
        needed,
        upload,
      );
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
    checkMachinesKnown(plan.deployment, answers, opts.state);
    // Under the locks, before any artifact is sent or step runs: announce what this transition
    // claims, refused if a transition of another deployment running now claims it first.
    await announceClaims(plan, recorded?.manifest, (name) => runtimes.get(name)!, machineConcurrency);
    stopRenewal = startRenewal(() => locked, lock, (machine, e) => {
      lost.push(machine);
      opts.state.journal(plan.deployment, { event: 'lock-lost', machine, error: e.message });
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
      await runSteps(plan, runtimes, opts, emit);
    } catch (e) {
      stepsRolledBack = true;
      throw e;
    }
    if (lost.length) {
      throw new ApplyError('LOCK_LOST', `lost the lock of ${lost.join(', ')} during the transition (another owner broke it); generation ${plan.generation} is not recorded`, { machines: lost });
    }

    const touched = plan.machines;
    if (!repair) {
      opts.state.journal(plan.deployment, { event: 'commit', generation: plan.generation, machines: touched });
      await mapLimit(touched, machineConcurrency, async (name) => {
        const machine = own(plan.desired.machines, name);
        await runtimes.get(name)!.commit(plan.generation, { deployment: plan.deployment, generation: plan.generation, manifestHash: plan.desired.hash, machine: machine ?? null });
      });
      opts.state.record(plan.deployment, {
        generation: plan.generation,
        createdAt: new Date().toISOString(),
        manifest: plan.desired,
        ...(opts.source ? { source: opts.source } : {}),
        ...(opts.commit ? { commit: opts.commit } : {}),
        ...(opts.rolledBackTo !== undefined ? { rolledBackTo: opts.rolledBackTo } : {}),
        ...(plan.pendingRestores?.length ? { pendingRestores: plan.pendingRestores } : {}),
      });
    }
    opts.state.journal(plan.deployment, { event: 'committed', generation: plan.generation });
    outcome = 'committed';
    emit({ kind: 'commit', generation: plan.generation, machines: touched.length });
  } catch (e) {
    if (stepsRolledBack) throw e; // runSteps rolled back already
    // A failure outside the steps (a lock, an upload, the machines' commit): undo what the journal says was done.
    const j = parseJournal(opts.state.readJournal(plan.deployment));
    if (!j.begin || (j.started.length === 0 && !j.commitStarted)) {
      opts.state.journal(plan.deployment, { event: 'rolled-back', generation: plan.generation });
      throw e;
    }
    const { undone, errors, unreachable } = await undoTransition({ ...j, begin: j.begin }, runtimes, opts.state, emit);
    opts.state.journal(plan.deployment, errors.length ? { event: 'rollback-incomplete', errors } : { event: 'rolled-back', generation: plan.generation });
    const err = e instanceof StrataError ? e : new ApplyError('APPLY_FAILED', messageOf(e));
    const outcomeText = errors.length
      ? `rollback incomplete: ${errors.join('; ')}${abandonHint(plan.deployment, unreachable)}`
      : `rolled back ${undone} step${undone === 1 ? '' : 's'}${j.commitStarted && !repair ? ' and the machines\' generation records' : ''}; the previous generation is running`;
    throw new ApplyError(err.code, `${err.message}\n${outcomeText}`, { ...err.data, rolledBack: errors.length === 0, rollbackErrors: errors });
  } finally {
    stopRenewal();
    await mapLimit(locked, machineConcurrency, (rt) => rt.unlock(owner, lock.token).catch(() => undefined));
    if (locked.length) emit({ kind: 'unlock', machines: locked.map((r) => r.machine).sort() });
    liveTokens.delete(lock.token);
    // With the outcome written and the locks released, the journal has done its work. Without
    // an outcome (a rollback that could not reach a machine), it stays for recovery.
    outcome ??= parseJournal(opts.state.readJournal(plan.deployment)).outcome;
    if (outcome) opts.state.clearJournal(plan.deployment);
    await Promise.all(all.map((rt) => rt.target.close()));
  }
  return {
    generation: plan.generation,
    steps: plan.steps.length,
    uploaded,
    bytesSent: all.reduce((n, rt) => n + rt.target.bytesSent, 0),
    durationMs: Date.now() - started,
  };
}

/** Phases one after another; within a phase, steps in parallel along `after`. */
async function runSteps(plan: Plan, runtimes: Map<string, MachineRuntime>, opts: ApplyOptions, emit: (e: ApplyEvent) => void): Promise<void> {
  const completed: Step[] = [];
  const concurrency = opts.stepConcurrency ?? 64;
  const stateful = StatefulSteps.forPlan(plan, opts.state.dir, opts.snapshotsKept, emit);
  for (const phase of ['infrastructure', 'deactivate', 'activate', 'cleanup'] as const) {
    const steps = plan.steps.filter((s) => s.phase === phase);
    if (steps.length === 0) continue;
    emit({ kind: 'phase', phase, steps: steps.length });
    const result = await walkGraph(steps, concurrency, async (step) => {
      const t0 = Date.now();
      emit({ kind: 'step', status: 'start', step });
      opts.state.journal(plan.deployment, { event: 'step', status: 'start', step: step.id });
      const rt = runtimes.get(step.machine)!;
      const r = isStatefulStep(step) ? await stateful.run(step, rt) : step.action === 'activate' ? await rt.activate(step.item) : await rt.deactivate(step.item);
      if (r.code !== 0) {
        const output = indent(r.stderr.trim() || `exit code ${r.code}`);
        throw new ApplyError('STEP_FAILED', `${step.action} ${step.item.name} on ${step.machine} failed (step ${step.id}):\n${output}`, {
          step: step.id,
          machine: step.machine,
          item: step.item.name,
          action: step.action,
          output: r.stderr.trim(),
        });
      }
      completed.push(step);
      opts.state.journal(plan.deployment, { event: 'step', status: 'done', step: step.id });
      emit({ kind: 'step', status: 'done', step, ms: Date.now() - t0 });
    });
    if (result.failed) {
      const error = result.failed.error;
      emit({ kind: 'step', status: 'failed', step: result.failed.node, error: messageOf(error) });
      const { errors, unreachable } = await rollBack(completed, runtimes, plan, opts, emit);
      throw failureAfterRollback(result.failed.node, error, completed.length, errors, abandonHint(plan.deployment, unreachable));
    }
  }
}

/**
 * Undoes, newest first, every step the journal says started: the completed ones and any whose
 * outcome is unknown (a lost connection), which is safe either way (src/apply/recover.ts).
 * Writes the outcome to the journal; apply removes it once the machines are unlocked.
 */
async function rollBack(_completed: Step[], runtimes: Map<string, MachineRuntime>, plan: Plan, opts: ApplyOptions, emit: (e: ApplyEvent) => void): Promise<{ errors: string[]; unreachable: string[] }> {
  const j = parseJournal(opts.state.readJournal(plan.deployment));
  if (!j.begin) throw new ApplyError('JOURNAL_INVALID', `the journal of ${plan.deployment} lost its begin entry`);
  const { errors, unreachable } = await undoTransition({ ...j, begin: j.begin }, runtimes, opts.state, emit);
  opts.state.journal(plan.deployment, errors.length ? { event: 'rollback-incomplete', errors } : { event: 'rolled-back', generation: plan.generation });
  return { errors, unreachable };
}

function failureAfterRollback(step: Step, error: unknown, undone: number, rollbackErrors: string[], hint = ''): ApplyError {
  const base = error instanceof StrataError ? error : new ApplyError('STEP_FAILED', `${step.action} ${step.item.name} on ${step.machine} failed: ${messageOf(error)}`, { step: step.id, machine: step.machine });
  const outcome = rollbackErrors.length
    ? `rollback incomplete: ${rollbackErrors.join('; ')}${hint}`
    : `rolled back ${undone} completed step${undone === 1 ? '' : 's'}; the previous generation is running`;
  return new ApplyError(base.code, `${base.message}\n${outcome}`, { ...base.data, rolledBack: rollbackErrors.length === 0, rollbackErrors });
}

/** The artifacts a machine's store must hold for the plan: its planned uploads and whatever its activations run. */
function neededArtifacts(plan: Plan, machine: string): string[] {
  const out = new Set(own(plan.uploads, machine)?.map((u) => u.hash) ?? []);
  for (const s of plan.steps) if (s.machine === machine && s.action === 'activate' && s.item.artifact) out.add(s.item.artifact);
  return [...out].sort();
}

function readArtifacts(desired: Manifest, hashes: readonly string[], tree: Tree): Promise<UploadArtifact[]> {
  return Promise.all(hashes.map(async (hash) => ({ hash, entries: await artifactEntries(desired, hash, tree) })));
}

function bytesOf(artifacts: readonly UploadArtifact[]): number {
  return artifacts.reduce((n, a) => n + a.entries.reduce((s, e) => s + e.content.byteLength, 0), 0);
}

/** An artifact's files, checked against the hash the plan was made with. */
async function artifactEntries(desired: Manifest, hash: string, tree: Tree) {
  const ref = own(desired.artifacts, hash);
  if (!ref) throw new ApplyError('ARTIFACT_UNKNOWN', `artifact ${hash} is not in the plan's manifest and not on the machine`);
  const entries = await readArtifact(ref, tree, new DeploymentDir(tree, boundOf(ref)));
  const actual = hashArtifact(entries).hash;
  if (actual !== hash) {
    const where = ref.kind === 'inline' ? ref.name : ref.path;
    throw new ApplyError('ARTIFACT_CHANGED', `artifact ${where} changed since the plan was made (hash ${actual.slice(0, 12)}, planned ${hash.slice(0, 12)}); run strata plan again`, { hash, actual });
  }
  return entries;
}

/** The directory an artifact is read inside: its deployment directory, else (older records) its own. */
function boundOf(ref: ArtifactRef): string {
  if (ref.deploymentDir !== undefined) return ref.deploymentDir;
  return ref.kind === 'file' ? posix.dirname(ref.path) : ref.kind === 'dir' ? ref.path : '.';
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
