import { applyPlan, type ApplyResult } from '../apply/apply.ts';
import type { Plan } from '../plan/types.ts';
import { openRuntime } from '../targets/connect.ts';
import { connectOptions, stateStore, type Context } from './context.ts';

export interface ApplyDeploymentOptions {
  source?: string;
  rolledBackTo?: number;
}

/** Applies a plan with the context's state store and targets. */
export function applyDeployment(plan: Plan, ctx: Context, opts: ApplyDeploymentOptions = {}): Promise<ApplyResult> {
  const conn = connectOptions(ctx);
  return applyPlan(plan, {
    state: stateStore(ctx),
    runtimeFor: (m) => openRuntime(m, conn),
    onEvent: ctx.onEvent,
    machineConcurrency: ctx.parallel,
    ...opts,
  });
}
