import { StateError } from '../errors.ts';
import { planDestroy as destroyPlan } from '../plan/destroy.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';

/** Plans taking down everything the deployment runs (src/plan/destroy.ts). */
export function planDestroy(deployment: string, ctx: Context): Plan {
  const current = stateStore(ctx).current(deployment);
  if (!current) throw new StateError('NOTHING_DEPLOYED', `deployment ${deployment} has nothing deployed`, { deployment });
  return destroyPlan(current);
}
