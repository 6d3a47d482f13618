import { ApplyError, StrataError } from '../errors.ts';
import type { Plan, Step } from '../plan/types.ts';
import { entry } from '../state/journal.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { MachineRuntime } from '../targets/runtimeApi.ts';
import type { ApplyEvent } from './events.ts';
import { messageOf } from '../lib/errorMessage.ts';
import { indent } from './indent.ts';
import { isStatefulStep, StatefulSteps } from './stateful.ts';
import { begun, foldJournal } from './transitionJournal.ts';
import { abandonHint, undoTransition } from './undo.ts';
import { walkGraph } from './walk.ts';

export interface StepRun {
  state: StateStore;
  runtimes: ReadonlyMap<string, MachineRuntime>;
  stepConcurrency?: number;
  snapshotsKept?: number;
  emit: (e: ApplyEvent) => void;
}

/**
 * Runs the plan's steps: phases one after another; within a phase, steps in parallel along
 * `after`, each journaled before and after. A failed step stops the walk, every started step
 * is undone (src/apply/undo.ts) and its outcome journaled; the ApplyError thrown names the
 * step and says what the undo did.
 */
export async function runSteps(plan: Plan, run: StepRun): Promise<void> {
  const { state, runtimes, emit } = run;
  let completed = 0;
  const stateful = StatefulSteps.forPlan(plan, state.dir, run.snapshotsKept, emit);
  for (const phase of ['infrastructure', 'deactivate', 'activate', 'cleanup'] as const) {
    const steps = plan.steps.filter((s) => s.phase === phase);
    if (steps.length === 0) continue;
    emit({ kind: 'phase', phase, steps: steps.length });
    const result = await walkGraph(steps, run.stepConcurrency ?? 64, async (step) => {
      const t0 = Date.now();
      emit({ kind: 'step', status: 'start', step });
      state.journal(plan.deployment, entry.step('start', step.id));
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
      completed++;
      state.journal(plan.deployment, entry.step('done', step.id));
      emit({ kind: 'step', status: 'done', step, ms: Date.now() - t0 });
    });
    if (result.failed) {
      const error = result.failed.error;
      emit({ kind: 'step', status: 'failed', step: result.failed.node, error: messageOf(error) });
      const { errors, unreachable } = await undoJournaled(plan, run);
      throw failureAfterUndo(result.failed.node, error, completed, errors, abandonHint(plan.deployment, unreachable));
    }
  }
}

/**
 * Undoes, newest first, every step the journal says started: the completed ones and any whose
 * outcome is unknown (a lost connection), which is safe either way. Writes the outcome to the
 * journal; apply removes it once the machines are unlocked.
 */
export async function undoJournaled(plan: Plan, run: Pick<StepRun, 'state' | 'runtimes' | 'emit'>) {
  const j = begun(foldJournal(run.state.readJournal(plan.deployment)));
  if (!j) throw new ApplyError('JOURNAL_INVALID', `the journal of ${plan.deployment} lost its begin entry`);
  const result = await undoTransition(j, run.runtimes, run.state, run.emit);
  run.state.journal(plan.deployment, result.errors.length ? entry.undoIncomplete(result.errors) : entry.outcome('rolled-back', plan.generation));
  return { ...result, commitStarted: j.commitStarted };
}

function failureAfterUndo(step: Step, error: unknown, completed: number, undoErrors: string[], hint = ''): ApplyError {
  const base = error instanceof StrataError ? error : new ApplyError('STEP_FAILED', `${step.action} ${step.item.name} on ${step.machine} failed: ${messageOf(error)}`, { step: step.id, machine: step.machine });
  const outcome = undoErrors.length
    ? `rollback incomplete: ${undoErrors.join('; ')}${hint}`
    : `rolled back ${completed} completed step${completed === 1 ? '' : 's'}; the previous generation is running`;
  return new ApplyError(base.code, `${base.message}\n${outcome}`, { ...base.data, rolledBack: undoErrors.length === 0, rollbackErrors: undoErrors });
}
