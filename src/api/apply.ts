import { applyPlan, type ApplyResult } from '../apply/apply.ts';
import type { Plan } from '../plan/types.ts';
import type { GenerationRecord } from '../state/fileState.ts';
import { fsTree } from '../source/fsTree.ts';
import type { Tree } from '../source/tree.ts';
import { openRuntime } from '../targets/connect.ts';
import { connectOptions, stateStore, type Context } from './context.ts';

export interface ApplyDeploymentOptions {
  source?: string;
  commit?: GenerationRecord['commit'];
  rolledBackTo?: number;
  /** Where artifacts are read from (default: the disk). */
  tree?: Tree;
}

/** Applies a plan with the context's state store and targets. */
export function applyDeployment(plan: Plan, ctx: Context, opts: ApplyDeploymentOptions = {}): Promise<ApplyResult> {
  const conn = connectOptions(ctx);
  const { tree = fsTree, ...rest } = opts;
  return applyPlan(plan, {
    state: stateStore(ctx),
    tree,
    runtimeFor: (m) => openRuntime(m, conn),
    onEvent: ctx.onEvent,
    machineConcurrency: ctx.parallel,
    ...rest,
  });
}
