import { ApplyError, StrataError } from '../errors.ts';
import type { MachineManifest } from '../manifest/types.ts';
import type { Plan, Step } from '../plan/types.ts';
import type { FileStateStore, GenerationRecord, JournalEntry } from '../state/fileState.ts';
import type { MachineRuntime } from '../targets/machineRuntime.ts';
import type { ApplyEvent, RecoveryAction, RecoveryResult } from './events.ts';
import { recordWithoutMachine, type AbandonRequestRecord } from './abandoned.ts';
import { DEFAULT_LEASE_MS, liveTokens, startRenewal, takeLock, type LockSpec } from './machineLocks.ts';
import { mapLimit } from '../lib/mapLimit.ts';
import { messageOf } from '../lib/errorMessage.ts';
import { own } from '../lib/table.ts';

/**
 * The write-ahead journal of a transition (`deployments/NAME/journal.jsonl`), as apply writes
 * it, every entry fsync'd before the effect it announces:
 *
 * - `begin`: the whole plan, the lock owner and token, the pid; before any machine is touched
 * - `lock-broken`: a stale lock of another owner was broken on a machine
 * - `step` start / done: around each step
 * - `rollback`, `undo` (per undone step), `uncommit`: a rollback under way
 * - `commit`: before the machines record the new generation
 * - `committed` / `rolled-back`: the outcome; `rollback-incomplete`: some undo failed (not final)
 * - `abandon`: a machine was declared gone for good (src/api/abandon.ts): its steps are lost,
 *   nothing more is tried on it
 *
 * The journal is removed once the outcome is written and the machines are unlocked.
 */
export interface BeginEntry {
  event: 'begin';
  generation: number;
  basis: Plan['basis'];
  /** The controller identity that holds the machine locks (HOST:ID). */
  owner: string;
  /** This transition's lock token: a lock with it is this transition's. */
  token: string;
  pid: number;
  host: string;
  leaseMs: number;
  plan: Plan;
  /** What the state store records with the generation. */
  record: Pick<GenerationRecord, 'source' | 'commit' | 'rolledBackTo'>;
}

export interface TransitionJournal {
  begin?: BeginEntry;
  /** Step ids in the order they started. */
  started: string[];
  done: Set<string>;
  undone: Set<string>;
  /** The machines were asked to record the generation (some may have). */
  commitStarted: boolean;
  outcome?: 'committed' | 'rolled-back';
  /** Machines abandoned while this transition was pending (who, why): never contacted again by it. */
  abandoned: Map<string, AbandonRequestRecord>;
}

export function parseJournal(entries: readonly JournalEntry[]): TransitionJournal {
  const j: TransitionJournal = { started: [], done: new Set(), undone: new Set(), commitStarted: false, abandoned: new Map() };
  for (const e of entries) {
    if (e.event === 'begin') j.begin = e as unknown as BeginEntry;
    else if (e.event === 'step' && e.status === 'start' && !j.started.includes(String(e.step))) j.started.push(String(e.step));
    else if (e.event === 'step' && e.status === 'done') j.done.add(String(e.step));
    else if (e.event === 'undo') j.undone.add(String(e.step));
    else if (e.event === 'commit') j.commitStarted = true;
    else if (e.event === 'committed') j.outcome = 'committed';
    else if (e.event === 'rolled-back') j.outcome = 'rolled-back';
    else if (e.event === 'abandon' && typeof e.machine === 'string') j.abandoned.set(e.machine, { machine: e.machine, by: String(e.by ?? 'unknown'), reason: String(e.reason ?? ''), at: e.at });
  }
  return j;
}

/**
 * Undoes a transition as its journal describes it: every step that started and was not undone
 * yet, newest first (an activation is deactivated, a deactivation activated again; both are
 * safe whether or not the step took effect), then — if the machines were asked to record the
 * generation — the previous generation's record is made current again on each. Each undone
 * step is journaled, so undoing again (after a crash, or once an unreachable machine is back)
 * only does what is left. A step on an abandoned machine is lost: journaled as such, not tried.
 * `unreachable` names the machines an undo could not reach (for the message that says what to do).
 */
export async function undoTransition(
  j: TransitionJournal & { begin: BeginEntry },
  runtimes: ReadonlyMap<string, MachineRuntime>,
  state: FileStateStore,
  emit: (e: ApplyEvent) => void,
): Promise<{ undone: number; lost: number; errors: string[]; unreachable: string[] }> {
  const plan = j.begin.plan;
  const deployment = plan.deployment;
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const todo = j.started
    .filter((id) => !j.undone.has(id))
    .map((id) => byId.get(id))
    .filter((s): s is Step => s !== undefined)
    .reverse();
  emit({ kind: 'rollback', steps: todo.length });
  state.journal(deployment, { event: 'rollback', steps: todo.map((s) => s.id) });
  const errors: string[] = [];
  /** Machines that did not answer, and why: nothing more is tried on them (each try would wait for them again). */
  const failed = new Map<string, string>();
  // Re-taking our own lock waits on the machine until no command of ours is still running there
  // (one whose connection dropped or timed out goes on): what it did must be over to be undone.
  const lock = { owner: j.begin.owner, token: j.begin.token, pid: process.pid, leaseMs: j.begin.leaseMs || DEFAULT_LEASE_MS };
  // A machine whose lock another owner holds now (our lease ran out) is theirs: not touched.
  const takenOver = new Map<string, string>();
  await mapLimit([...new Set(todo.map((s) => s.machine))].filter((m) => !j.abandoned.has(m)), 32, async (name) => {
    await runtimes
      .get(name)
      ?.lock(lock)
      .catch((e: unknown) => {
        if (e instanceof StrataError && e.code === 'MACHINE_LOCKED') takenOver.set(name, e.message);
        else failed.set(name, messageOf(e));
      });
  });
  let undone = 0;
  let lost = 0;
  for (const step of todo) {
    if (j.abandoned.has(step.machine)) {
      state.journal(deployment, { event: 'undo', step: step.id, lost: true });
      j.undone.add(step.id);
      lost++;
      emit({ kind: 'rollback-step', step, ok: false, error: `lost: ${step.machine} was abandoned` });
      continue;
    }
    // Snapshot and restore steps (stateful services) copy data; the old instance's data was never dropped.
    if (step.action !== 'activate' && step.action !== 'deactivate') {
      state.journal(deployment, { event: 'undo', step: step.id, skipped: true });
      continue;
    }
    const rt = runtimes.get(step.machine);
    try {
      if (!rt) throw new ApplyError('PLAN_INVALID', `no runtime for machine ${step.machine}`);
      if (failed.has(step.machine)) throw new ApplyError('SKIPPED', failed.get(step.machine)!);
      if (takenOver.has(step.machine)) throw new ApplyError('SKIPPED', `not undone: ${takenOver.get(step.machine)}`);
      const r = step.action === 'activate' ? await rt.deactivate(step.item) : await rt.activate(step.item);
      if (r.code !== 0) throw new Error(r.stderr.trim() || `exit ${r.code}`);
      state.journal(deployment, { event: 'undo', step: step.id });
      j.undone.add(step.id);
      undone++;
      emit({ kind: 'rollback-step', step, ok: true });
    } catch (e) {
      if (e instanceof StrataError && e.code !== 'SKIPPED' && e.code !== 'PLAN_INVALID') failed.set(step.machine, e.message);
      errors.push(`undo step ${step.id} (${step.action} ${step.item.name} on ${step.machine}): ${messageOf(e)}`);
      emit({ kind: 'rollback-step', step, ok: false, error: messageOf(e) });
    }
  }
  if (j.commitStarted && plan.generation !== plan.basis.generation) {
    state.journal(deployment, { event: 'uncommit', generation: plan.generation });
    await mapLimit(plan.machines, 32, async (name) => {
      const rt = runtimes.get(name);
      if (!rt || takenOver.has(name) || j.abandoned.has(name)) return;
      if (failed.has(name)) return void errors.push(`restore the previous generation record on ${name}: ${failed.get(name)}`);
      try {
        await rt.uncommit(plan.generation);
      } catch (e) {
        if (e instanceof StrataError) failed.set(name, e.message);
        errors.push(`restore the previous generation record on ${name}: ${messageOf(e)}`);
      }
    });
  }
  return { undone, lost, errors, unreachable: [...failed.keys()].sort() };
}

/**
 * What to do about machines a recovery cannot reach, for its error message: wait until they
 * answer, or, when one is gone for good, abandon it (docs/reliability.md).
 */
export function abandonHint(deployment: string, machines: readonly string[]): string {
  if (machines.length === 0) return '';
  const list = machines.join(', ');
  if (machines.length === 1) return `; it is tried again once ${list} answers. If it is gone for good, run \`strata abandon-machine ${list} --deployment ${deployment} --reason TEXT --yes\``;
  return `; it is tried again once ${list} answer. For each that is gone for good, run \`strata abandon-machine MACHINE --deployment ${deployment} --reason TEXT --yes\``;
}

export interface RecoverOptions {
  state: FileStateStore;
  /** Opens a machine's runtime (the same as apply's). */
  runtimeFor: (m: MachineManifest) => MachineRuntime;
  machineConcurrency?: number;
  onEvent?: (e: ApplyEvent) => void;
}

/**
 * Recovers a transition that a crash interrupted (docs/reliability.md, "The transition and
 * what it promises", 2: "a crash at any point is recovered on restart"). Reads the journal; with no journal there is nothing to do. When
 * it has `begin` but no outcome:
 *
 * - if every machine the plan touches has recorded the new generation (the crash came after
 *   the machines' commit, before the state store's), the transition is completed: the
 *   generation is recorded in the state store;
 * - otherwise it is rolled back: the machine locks are re-taken with the journal's token (a
 *   restarted controller recognises its own locks), every started step is undone, the
 *   previous generation's record is restored on the machines, and `rolled-back` is written.
 *
 * Then the locks are released and the journal removed. A journal whose outcome is already
 * written only needs that last part. The caller holds the deployment's transition lock
 * (FileStateStore.lockDeployment). A machine that cannot be reached makes recovery fail (naming
 * it); the journal stays, and the next attempt does what is left.
 */
export async function recoverTransition(deployment: string, opts: RecoverOptions): Promise<RecoveryResult> {
  const { state } = opts;
  const emit = opts.onEvent ?? (() => {});
  const entries = state.readJournal(deployment);
  const nothing = (message: string): RecoveryResult => ({ action: 'none', deployment, undone: 0, started: 0, machines: [], message });
  if (entries.length === 0) {
    if (state.hasJournal(deployment)) state.clearJournal(deployment);
    return nothing('no interrupted transition');
  }
  const parsed = parseJournal(entries);
  const begin = parsed.begin;
  if (!begin) {
    // `begin` is written before anything else: without it, no machine was touched.
    state.clearJournal(deployment);
    return nothing('removed a journal without a transition');
  }
  const j = { ...parsed, begin };
  const plan = begin.plan;
  const N = plan.generation;
  const repair = plan.generation === plan.basis.generation;
  const concurrency = opts.machineConcurrency ?? 32;
  const result = (action: RecoveryAction, undone: number, message: string): RecoveryResult => {
    const r: RecoveryResult = { action, deployment, generation: N, undone, started: j.started.length, machines: plan.machines, message };
    emit({ kind: 'recovery', result: r });
    return r;
  };

  const runtimes = new Map<string, MachineRuntime>();
  const basisManifest = plan.basis.generation !== null ? safeGeneration(state, deployment, plan.basis.generation)?.manifest : undefined;
  for (const name of plan.machines) {
    if (j.abandoned.has(name)) continue;
    const m = own(plan.desired.machines, name) ?? own(basisManifest?.machines, name);
    if (!m) throw new ApplyError('JOURNAL_INVALID', `the journal of ${deployment} names machine ${name}, which neither its plan nor generation ${plan.basis.generation} has`, { deployment });
    runtimes.set(name, opts.runtimeFor(m));
  }
  const all = [...runtimes.values()];
  const lock: LockSpec = { owner: begin.owner, token: begin.token, leaseMs: begin.leaseMs || DEFAULT_LEASE_MS };
  liveTokens.add(lock.token);
  const unlockAll = async () => {
    const failed: string[] = [];
    await mapLimit(all, concurrency, (rt) => rt.unlock(lock.owner, lock.token).catch(() => void failed.push(rt.machine)));
    return failed;
  };
  const finish = async (outcome: 'committed' | 'rolled-back') => {
    if (j.outcome !== outcome) state.journal(deployment, { event: outcome, generation: N, by: 'recovery' });
    // An abandonment journaled with this transition is finished too: the machine leaves the recorded state.
    for (const req of j.abandoned.values()) recordWithoutMachine(state, deployment, req);
    await unlockAll();
    // A lock left behind (an unreachable machine) is ours: taken over when next needed, or its lease runs out.
    state.clearJournal(deployment);
  };

  try {
    if (j.outcome) {
      await finish(j.outcome);
      return result('cleaned-up', 0, `the transition to generation ${N} had ${j.outcome === 'committed' ? 'committed' : 'rolled back'}; released its locks`);
    }
    state.journal(deployment, { event: 'recovery', pid: process.pid });

    // The state store recorded it already (the crash came between its record and the journal's).
    const recorded = state.currentGeneration(deployment);
    if (!repair && recorded === N && safeGeneration(state, deployment, N)?.manifest.hash === plan.desired.hash) {
      await finish('committed');
      return result('completed', 0, `the transition to generation ${N} had been recorded; completed it`);
    }

    // Re-take the locks: ours (same token) are renewed; one taken over by another owner stops recovery.
    const lockErrors: { machine: string; e: unknown }[] = [];
    await mapLimit(all, concurrency, async (rt) => {
      try {
        await takeLock(rt, lock, (b) => {
          state.journal(deployment, { event: 'lock-broken', machine: rt.machine, holder: b, why: b.why });
          emit({ kind: 'lock-broken', machine: rt.machine, holder: b, why: b.why });
        });
      } catch (e) {
        lockErrors.push({ machine: rt.machine, e });
      }
    });
    if (lockErrors.length) {
      const locked = lockErrors.find((x) => x.e instanceof StrataError && x.e.code === 'MACHINE_LOCKED');
      await unlockAll();
      const why = lockErrors.map((x) => messageOf(x.e)).join('; ');
      const text = `cannot recover the interrupted transition of ${deployment} to generation ${N}: ${why}`;
      if (locked) throw new StrataError('MACHINE_LOCKED', text, { ...(locked.e as StrataError).data, deployment });
      // Unreachable (or failing) machines: say what to do about them.
      const machines = lockErrors.map((x) => x.machine).sort();
      throw new ApplyError('RECOVERY_FAILED', `${text}${abandonHint(deployment, machines)}`, { deployment, machines });
    }
    const stopRenewal = startRenewal(() => all, lock, () => {});
    try {
      // Did every machine record the new generation? Then only the state store's record is missing.
      if (!repair && j.commitStarted) {
        // (A record that is not a valid one, MACHINE_ANSWER_INVALID, does not record the generation: rolled back.)
        const records = await mapLimit(all, concurrency, (rt) => rt.recorded().then((r) => ({ r }), (e: unknown) => (e instanceof StrataError && e.code !== 'MACHINE_ANSWER_INVALID' ? { e } : { r: undefined })));
        const unreachable = records.flatMap((x) => ('e' in x ? [messageOf(x.e)] : []));
        const machines = all.filter((_, i) => 'e' in records[i]!).map((rt) => rt.machine);
        if (unreachable.length) {
          throw new ApplyError('RECOVERY_FAILED', `cannot recover the interrupted transition of ${deployment} to generation ${N}: ${unreachable.join('; ')}${abandonHint(deployment, machines)}`, { deployment, machines });
        }
        const atN = (x: (typeof records)[number]) => 'r' in x && x.r?.generation === N && x.r.manifestHash === plan.desired.hash && x.r.deployment === deployment;
        if (records.every(atN)) {
          state.record(deployment, {
            generation: N,
            createdAt: new Date().toISOString(),
            manifest: plan.desired,
            ...(begin.record.source ? { source: begin.record.source } : {}),
            ...(begin.record.commit ? { commit: begin.record.commit } : {}),
            ...(begin.record.rolledBackTo !== undefined ? { rolledBackTo: begin.record.rolledBackTo } : {}),
            ...(plan.pendingRestores?.length ? { pendingRestores: plan.pendingRestores } : {}),
          });
          await finish('committed');
          return result('completed', 0, `every machine had recorded generation ${N}; recorded it in the state store`);
        }
      }

      const { undone, lost, errors, unreachable } = await undoTransition(j, runtimes, state, emit);
      if (errors.length) {
        state.journal(deployment, { event: 'rollback-incomplete', errors });
        throw new ApplyError(
          'RECOVERY_FAILED',
          `rolling back the interrupted transition of ${deployment} to generation ${N} is incomplete (it is tried again next time): ${errors.join('; ')}${abandonHint(deployment, unreachable)}`,
          { deployment, errors, machines: unreachable },
        );
      }
      await finish('rolled-back');
      const lostText = lost ? `, ${lost} lost with abandoned ${[...j.abandoned.keys()].sort().join(', ')}` : '';
      return result('rolled-back', undone, `rolled back the interrupted transition to generation ${N}: ${undone} of ${j.started.length} started step${j.started.length === 1 ? '' : 's'} undone${lostText}${j.commitStarted && !repair ? ', previous generation records restored' : ''}`);
    } finally {
      stopRenewal();
    }
  } finally {
    liveTokens.delete(lock.token);
    await Promise.all(all.map((rt) => rt.target.close()));
  }
}

function safeGeneration(state: FileStateStore, deployment: string, n: number): GenerationRecord | undefined {
  try {
    return state.generation(deployment, n);
  } catch {
    return undefined;
  }
}
