import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { ApplyError, StrataError } from '../errors.ts';
import { hashArtifact } from '../artifact/hash.ts';
import { readArtifact } from '../artifact/read.ts';
import type { MachineManifest, Manifest } from '../manifest/types.ts';
import type { Tree } from '../source/tree.ts';
import { isEmptyPlan } from '../plan/diff.ts';
import type { Plan, Step } from '../plan/types.ts';
import type { FileStateStore, GenerationRecord } from '../state/fileState.ts';
import type { MachineRuntime } from '../targets/machineRuntime.ts';
import type { ApplyEvent } from './events.ts';
import { mapLimit } from './mapLimit.ts';
import { walkGraph } from './walk.ts';

export interface ApplyOptions {
  state: FileStateStore;
  /** Where the plan's artifacts are read from (the disk, or the Git commit planned). */
  tree: Tree;
  /** Opens a machine's runtime; called once per machine the plan touches. */
  runtimeFor: (m: MachineManifest) => MachineRuntime;
  /** Who holds the machine locks; default host:pid:random. */
  owner?: string;
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
}

export interface ApplyResult {
  generation: number;
  steps: number;
  /** Artifact hashes uploaded, per machine. */
  uploaded: Record<string, string[]>;
  bytesSent: number;
  durationMs: number;
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
 * The transition (BRIEF.md, Semantics 3): lock the machines, upload missing artifacts, run
 * the plan's phases in order, each along its graph, record the generation on the machines
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

  const machineConcurrency = opts.machineConcurrency ?? 32;
  const owner = opts.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const runtimes = new Map<string, MachineRuntime>();
  for (const name of plan.machines) {
    const m = plan.desired.machines[name] ?? recorded?.manifest.machines[name];
    if (!m) throw new ApplyError('PLAN_INVALID', `plan names machine ${name}, which neither the desired nor the recorded manifest has`);
    runtimes.set(name, opts.runtimeFor(m));
  }
  const all = [...runtimes.values()];
  const locked: MachineRuntime[] = [];
  const uploaded: Record<string, string[]> = {};
  try {
    emit({ kind: 'lock', machines: plan.machines });
    await mapLimit(all, machineConcurrency, async (rt) => {
      await rt.lock(owner);
      locked.push(rt);
    });
    opts.state.journal(plan.deployment, { event: 'begin', generation: plan.generation, basis: plan.basis, owner });

    await mapLimit(all, machineConcurrency, async (rt) => {
      const hashes = plan.uploads[rt.machine]?.map((u) => u.hash) ?? [];
      const needed = neededArtifacts(plan, rt.machine, hashes);
      const missing = await rt.missing(needed);
      if (missing.length === 0) return;
      const artifacts = await Promise.all(missing.map(async (h) => ({ hash: h, entries: await artifactEntries(plan.desired, h, opts.tree) })));
      emit({ kind: 'upload', machine: rt.machine, artifacts: missing.length, bytes: artifacts.reduce((n, a) => n + a.entries.reduce((s, e) => s + e.content.byteLength, 0), 0) });
      await rt.upload(artifacts);
      uploaded[rt.machine] = missing;
    });

    await runSteps(plan, runtimes, opts, emit);

    const touched = plan.machines;
    // A repair plan (src/api/repair.ts) returns machines to the generation they have: nothing new to record.
    if (plan.generation !== plan.basis.generation) {
      await mapLimit(touched, machineConcurrency, async (name) => {
        const machine = plan.desired.machines[name];
        await runtimes.get(name)!.commit(plan.generation, { deployment: plan.deployment, generation: plan.generation, manifestHash: plan.desired.hash, machine: machine ?? null });
      });
      opts.state.record(plan.deployment, {
        generation: plan.generation,
        createdAt: new Date().toISOString(),
        manifest: plan.desired,
        ...(opts.source ? { source: opts.source } : {}),
        ...(opts.commit ? { commit: opts.commit } : {}),
        ...(opts.rolledBackTo !== undefined ? { rolledBackTo: opts.rolledBackTo } : {}),
      });
    }
    opts.state.journal(plan.deployment, { event: 'committed', generation: plan.generation });
    emit({ kind: 'commit', generation: plan.generation, machines: touched.length });
    opts.state.clearJournal(plan.deployment);
  } finally {
    await mapLimit(locked, machineConcurrency, (rt) => rt.unlock(owner).catch(() => undefined));
    if (locked.length) emit({ kind: 'unlock', machines: locked.map((r) => r.machine).sort() });
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
  for (const phase of ['infrastructure', 'deactivate', 'activate', 'cleanup'] as const) {
    const steps = plan.steps.filter((s) => s.phase === phase);
    if (steps.length === 0) continue;
    emit({ kind: 'phase', phase, steps: steps.length });
    const result = await walkGraph(steps, concurrency, async (step) => {
      const t0 = Date.now();
      emit({ kind: 'step', status: 'start', step });
      opts.state.journal(plan.deployment, { event: 'step', status: 'start', step: step.id });
      const rt = runtimes.get(step.machine)!;
      const r = step.action === 'activate' ? await rt.activate(step.item) : await rt.deactivate(step.item);
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
      const rollbackErrors = await rollBack(completed, runtimes, plan, opts, emit);
      throw failureAfterRollback(result.failed.node, error, completed.length, rollbackErrors);
    }
  }
}

/** Undoes completed steps newest first: an activation is deactivated, a deactivation re-activated. */
async function rollBack(completed: Step[], runtimes: Map<string, MachineRuntime>, plan: Plan, opts: ApplyOptions, emit: (e: ApplyEvent) => void): Promise<string[]> {
  emit({ kind: 'rollback', steps: completed.length });
  opts.state.journal(plan.deployment, { event: 'rollback', steps: completed.length });
  const errors: string[] = [];
  for (const step of [...completed].reverse()) {
    const rt = runtimes.get(step.machine)!;
    try {
      const r = step.action === 'activate' ? await rt.deactivate(step.item) : await rt.activate(step.item);
      if (r.code !== 0) throw new Error(r.stderr.trim() || `exit ${r.code}`);
      emit({ kind: 'rollback-step', step, ok: true });
    } catch (e) {
      errors.push(`undo step ${step.id} (${step.action} ${step.item.name} on ${step.machine}): ${messageOf(e)}`);
      emit({ kind: 'rollback-step', step, ok: false, error: messageOf(e) });
    }
  }
  opts.state.journal(plan.deployment, { event: 'rolled-back', errors });
  if (errors.length === 0) opts.state.clearJournal(plan.deployment);
  return errors;
}

function failureAfterRollback(step: Step, error: unknown, undone: number, rollbackErrors: string[]): ApplyError {
  const base = error instanceof StrataError ? error : new ApplyError('STEP_FAILED', `${step.action} ${step.item.name} on ${step.machine} failed: ${messageOf(error)}`, { step: step.id, machine: step.machine });
  const outcome = rollbackErrors.length
    ? `rollback incomplete: ${rollbackErrors.join('; ')}`
    : `rolled back ${undone} completed step${undone === 1 ? '' : 's'}; the previous generation is running`;
  return new ApplyError(base.code, `${base.message}\n${outcome}`, { ...base.data, rolledBack: rollbackErrors.length === 0, rollbackErrors });
}

function neededArtifacts(plan: Plan, machine: string, planned: string[]): string[] {
  const out = new Set(planned);
  for (const s of plan.steps) if (s.machine === machine && s.action === 'activate' && s.item.artifact) out.add(s.item.artifact);
  return [...out].sort();
}

/** An artifact's files, checked against the hash the plan was made with. */
async function artifactEntries(desired: Manifest, hash: string, tree: Tree) {
  const ref = desired.artifacts[hash];
  if (!ref) throw new ApplyError('ARTIFACT_UNKNOWN', `artifact ${hash} is not in the plan's manifest and not on the machine`);
  const entries = await readArtifact(ref, tree);
  const actual = hashArtifact(entries).hash;
  if (actual !== hash) {
    const where = ref.kind === 'inline' ? ref.name : ref.path;
    throw new ApplyError('ARTIFACT_CHANGED', `artifact ${where} changed since the plan was made (hash ${actual.slice(0, 12)}, planned ${hash.slice(0, 12)}); run strata plan again`, { hash, actual });
  }
  return entries;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
