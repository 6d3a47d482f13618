import { claimConflictError, findClaimConflicts } from '../apply/claims.ts';
import type { ClaimConflict } from '../manifest/claims.ts';
import type { Plan } from '../plan/types.ts';
import type { MachineRuntime } from '../targets/runtimeApi.ts';
import { connectOptions, stateStore, type Context } from './context.ts';

export interface ClaimCheck {
  /** Machines that could not be asked (apply asks them again before it changes anything). */
  unchecked: { machine: string; error: string }[];
}

/**
 * `strata plan`'s check that no other deployment on a machine holds a port or path the plan
 * claims anew: one read-only command per such machine (none when the plan claims nothing new).
 * CLAIM_CONFLICT when one does; a machine that cannot be reached is only reported.
 */
export async function checkPlanClaims(plan: Plan, ctx: Context): Promise<ClaimCheck> {
  const recorded = stateStore(ctx).current(plan.deployment)?.manifest;
  const opened = new Map<string, MachineRuntime>();
  const unchecked: ClaimCheck['unchecked'] = [];
  const found: ClaimConflict[] = [];
  const conn = connectOptions(ctx);
  try {
    for (const name of Object.keys(plan.desired.machines)) opened.set(name, ctx.services.openRuntime(plan.desired.machines[name]!, plan.deployment, conn));
    // One machine at a time through findClaimConflicts, so that an unreachable one is reported, not fatal.
    await Promise.all(
      [...opened.keys()].map(async (name) => {
        const one: Plan = { ...plan, desired: { ...plan.desired, machines: { [name]: plan.desired.machines[name]! } } };
        try {
          found.push(...(await findClaimConflicts(one, recorded, (m) => opened.get(m)!)));
        } catch (e) {
          unchecked.push({ machine: name, error: (e as Error).message });
        }
      }),
    );
  } finally {
    await Promise.all([...opened.values()].map((rt) => rt.close()));
  }
  if (found.length) throw claimConflictError(plan, found);
  return { unchecked: unchecked.sort((a, b) => (a.machine < b.machine ? -1 : 1)) };
}
