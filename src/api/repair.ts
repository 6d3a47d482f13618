import { StateError } from '../errors.ts';
import { planRepair as repairPlan } from '../plan/repair.ts';
import type { Plan } from '../plan/types.ts';
import { type Context, stateStore } from './context.ts';
import type { Drift } from './status.ts';

/** The repair plan (src/plan/repair.ts) of the drifted items of the deployment's recorded generation. */
export function planRepair(deployment: string, drifts: readonly Drift[], ctx: Context): Plan {
  const current = stateStore(ctx).current(deployment);
  if (!current) throw new StateError('NOTHING_DEPLOYED', `deployment ${deployment} has nothing deployed to repair`, { deployment });
  return repairPlan(current, drifts);
}
