import { StrataError } from '../errors.ts';
import type { Step } from '../plan/types.ts';
import { entry } from '../state/journal.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { MachineRuntime } from '../targets/runtimeApi.ts';
import type { ApplyEvent } from './events.ts';
import { DEFAULT_LEASE_MS } from './machineLocks.ts';
import { mapLimit } from '../lib/mapLimit.ts';
import { messageOf } from '../lib/errorMessage.ts';
import type { BegunTransition } from './transitionJournal.ts';

export interface UndoResult {
  undone: number;
  /** Steps lost with an abandoned machine. */
  lost: number;
  errors: string[];
  /** The machines an undo could not reach (for the message that says what to do). */
  unreachable: string[];
}

/**
 * Undoes a transition as its journal describes it: every step that started and was not undone
 * yet, newest first (an activation is deactivated, a deactivation activated again; both are
 * safe whether or not the step took effect), then — if the machines were asked to record the
 * generation — the previous generation's record is made current again on each. Each undone
 * step is journaled, so undoing again (after a crash, or once an unreachable machine is back)
 * only does what is left. A step on an abandoned machine is lost: journaled as such, not tried.
 */
export async function undoTransition(j: BegunTransition, runtimes: ReadonlyMap<string, MachineRuntime>, state: StateStore, emit: (e: ApplyEvent) => void): Promise<UndoResult> {
  const plan = j.begin.plan;
  const deployment = plan.deployment;
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const todo = j.started
    .filter((id) => !j.undone.has(id))
    .map((id) => byId.get(id))
    .filter((s): s is Step => s !== undefined)
    .reverse();
  emit({ kind: 'undo', steps: todo.length });
  state.journal(deployment, entry.undoStart(todo.map((s) => s.id)));
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
  /** Why nothing is tried on a machine: it did not answer, or another owner holds it now. */
  const notTried = (machine: string): string | undefined => {
    if (!runtimes.has(machine)) return `no runtime for machine ${machine}`;
    const taken = takenOver.get(machine);
    return failed.get(machine) ?? (taken === undefined ? undefined : `not undone: ${taken}`);
  };
  const fail = (step: Step, why: string) => {
    errors.push(`undo step ${step.id} (${step.action} ${step.item.name} on ${step.machine}): ${why}`);
    emit({ kind: 'undo-step', step, ok: false, error: why });
  };
  let undone = 0;
  let lost = 0;
  for (const step of todo) {
    if (j.abandoned.has(step.machine)) {
      state.journal(deployment, entry.undo(step.id, 'lost'));
      j.undone.add(step.id);
      lost++;
      emit({ kind: 'undo-step', step, ok: false, error: `lost: ${step.machine} was abandoned` });
      continue;
    }
    // Snapshot and restore steps (stateful services) copy data; the old instance's data was never dropped.
    if (step.action !== 'activate' && step.action !== 'deactivate') {
      state.journal(deployment, entry.undo(step.id, 'skipped'));
      continue;
    }
    const why = notTried(step.machine);
    if (why !== undefined) {
      fail(step, why);
      continue;
    }
    const rt = runtimes.get(step.machine)!;
    try {
      const r = step.action === 'activate' ? await rt.deactivate(step.item) : await rt.activate(step.item);
      if (r.code !== 0) {
        fail(step, r.stderr.trim() || `exit ${r.code}`);
        continue;
      }
      state.journal(deployment, entry.undo(step.id));
      j.undone.add(step.id);
      undone++;
      emit({ kind: 'undo-step', step, ok: true });
    } catch (e) {
      // The machine did not answer (a StrataError from its target): nothing more is tried there.
      if (e instanceof StrataError) failed.set(step.machine, e.message);
      fail(step, messageOf(e));
    }
  }
  if (j.commitStarted && plan.kind !== 'repair') {
    state.journal(deployment, entry.uncommit(plan.generation));
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
