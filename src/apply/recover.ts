import { ApplyError, StrataError } from '../errors.ts';
import type { MachineManifest } from '../manifest/types.ts';
import { entry } from '../state/journal.ts';
import type { GenerationRecord } from '../state/records.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { MachineRuntime } from '../targets/runtimeApi.ts';
import type { ApplyEvent } from './events.ts';
import { generationOf } from './generationRecord.ts';
import type { LiveTransitions } from './liveTransitions.ts';
import { recordWithoutMachine } from './abandoned.ts';
import { brokenReporter, DEFAULT_LEASE_MS, startRenewal, takeLock, type LockSpec } from './machineLocks.ts';
import { mapLimit } from '../lib/mapLimit.ts';
import { messageOf } from '../lib/errorMessage.ts';
import type { RecoveryAction, RecoveryResult } from './recoveryResult.ts';
import { begun, foldJournal, type BegunTransition } from './transitionJournal.ts';
import { abandonHint, undoTransition } from './undo.ts';
import { own } from '../lib/table.ts';

export interface RecoverOptions {
  state: StateStore;
  /** Opens a machine's runtime (the same as apply's). */
  runtimeFor: (m: MachineManifest) => MachineRuntime;
  /** The transitions running in this process (the same as apply's). */
  live: LiveTransitions;
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
 * (StateStore.lockDeployment). A machine that cannot be reached makes recovery fail (naming
 * it); the journal stays, and the next attempt does what is left.
 */
export async function recoverTransition(deployment: string, opts: RecoverOptions): Promise<RecoveryResult> {
  const { state } = opts;
  const entries = state.readJournal(deployment);
  const nothing = (message: string): RecoveryResult => ({ action: 'none', deployment, undone: 0, started: 0, machines: [], message });
  if (entries.length === 0) {
    if (state.hasJournal(deployment)) state.clearJournal(deployment);
    return nothing('no interrupted transition');
  }
  const j = begun(foldJournal(entries));
  if (!j) {
    // `begin` is written before anything else: without it, no machine was touched.
    state.clearJournal(deployment);
    return nothing('removed a journal without a transition');
  }
  const { begin } = j;
  const lock: LockSpec = { owner: begin.owner, token: begin.token, leaseMs: begin.leaseMs || DEFAULT_LEASE_MS, live: opts.live };
  return opts.live.during(lock.token, () => recover(j, lock, opts));
}

async function recover(j: BegunTransition, lock: LockSpec, opts: RecoverOptions): Promise<RecoveryResult> {
  const { state } = opts;
  const emit = opts.onEvent ?? (() => {});
  const plan = j.begin.plan;
  const deployment = plan.deployment;
  const N = plan.generation;
  const records = plan.kind !== 'repair';
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
  const unlockAll = async () => {
    const failed: string[] = [];
    await mapLimit(all, concurrency, (rt) => rt.unlock(lock.owner, lock.token).catch(() => void failed.push(rt.machine)));
    return failed;
  };
  const finish = async (outcome: 'committed' | 'rolled-back') => {
    if (j.outcome !== outcome) state.journal(deployment, entry.outcome(outcome, N, 'recovery'));
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
    state.journal(deployment, entry.recovery(process.pid));

    // The state store recorded it already (the crash came between its record and the journal's).
    const recorded = state.currentGeneration(deployment);
    if (records && recorded === N && safeGeneration(state, deployment, N)?.manifest.hash === plan.desired.hash) {
      await finish('committed');
      return result('completed', 0, `the transition to generation ${N} had been recorded; completed it`);
    }

    // Re-take the locks: ours (same token) are renewed; one taken over by another owner stops recovery.
    const lockErrors: { machine: string; e: unknown }[] = [];
    const onBroken = brokenReporter(state, deployment, emit);
    await mapLimit(all, concurrency, async (rt) => {
      try {
        await takeLock(rt, lock, onBroken(rt.machine));
      } catch (e) {
        lockErrors.push({ machine: rt.machine, e });
      }
    });
    if (lockErrors.length) {
      const locked = lockErrors.flatMap((x) => (x.e instanceof StrataError && x.e.code === 'MACHINE_LOCKED' ? [x.e] : []))[0];
      await unlockAll();
      const why = lockErrors.map((x) => messageOf(x.e)).join('; ');
      const text = `cannot recover the interrupted transition of ${deployment} to generation ${N}: ${why}`;
      if (locked) throw new StrataError('MACHINE_LOCKED', text, { ...locked.data, deployment });
      // Unreachable (or failing) machines: say what to do about them.
      const machines = lockErrors.map((x) => x.machine).sort();
      throw new ApplyError('RECOVERY_FAILED', `${text}${abandonHint(deployment, machines)}`, { deployment, machines });
    }
    const stopRenewal = startRenewal(() => all, lock, () => {});
    try {
      // Did every machine record the new generation? Then only the state store's record is missing.
      if (records && j.commitStarted && (await allRecorded(j, all, concurrency))) {
        state.record(deployment, generationOf(plan, j.begin.record));
        await finish('committed');
        return result('completed', 0, `every machine had recorded generation ${N}; recorded it in the state store`);
      }

      const { undone, lost, errors, unreachable } = await undoTransition(j, runtimes, state, emit);
      if (errors.length) {
        state.journal(deployment, entry.undoIncomplete(errors));
        throw new ApplyError(
          'RECOVERY_FAILED',
          `rolling back the interrupted transition of ${deployment} to generation ${N} is incomplete (it is tried again next time): ${errors.join('; ')}${abandonHint(deployment, unreachable)}`,
          { deployment, errors, machines: unreachable },
        );
      }
      await finish('rolled-back');
      const lostText = lost ? `, ${lost} lost with abandoned ${[...j.abandoned.keys()].sort().join(', ')}` : '';
      return result('rolled-back', undone, `rolled back the interrupted transition to generation ${N}: ${undone} of ${j.started.length} started step${j.started.length === 1 ? '' : 's'} undone${lostText}${j.commitStarted && records ? ', previous generation records restored' : ''}`);
    } finally {
      stopRenewal();
    }
  } finally {
    await Promise.all(all.map((rt) => rt.close()));
  }
}

/**
 * Whether every machine of the plan records its generation. A record that is not a valid one
 * (MACHINE_ANSWER_INVALID) does not record it; a machine that does not answer makes recovery
 * fail (RECOVERY_FAILED naming it), since which way to go is unknown.
 */
async function allRecorded(j: BegunTransition, all: readonly MachineRuntime[], concurrency: number): Promise<boolean> {
  const plan = j.begin.plan;
  const answers = await mapLimit(all, concurrency, (rt) =>
    rt.recorded().then(
      (r) => ({ machine: rt.machine, r }),
      (e: unknown) => (e instanceof StrataError && e.code !== 'MACHINE_ANSWER_INVALID' ? { machine: rt.machine, e } : { machine: rt.machine, r: undefined }),
    ),
  );
  const unreachable = answers.flatMap((x) => ('e' in x ? [x] : []));
  if (unreachable.length) {
    const machines = unreachable.map((x) => x.machine);
    throw new ApplyError('RECOVERY_FAILED', `cannot recover the interrupted transition of ${plan.deployment} to generation ${plan.generation}: ${unreachable.map((x) => messageOf(x.e)).join('; ')}${abandonHint(plan.deployment, machines)}`, { deployment: plan.deployment, machines });
  }
  return answers.every((x) => 'r' in x && x.r?.generation === plan.generation && x.r.manifestHash === plan.desired.hash && x.r.deployment === plan.deployment);
}

function safeGeneration(state: StateStore, deployment: string, n: number): GenerationRecord | undefined {
  try {
    return state.generation(deployment, n);
  } catch {
    return undefined;
  }
}
