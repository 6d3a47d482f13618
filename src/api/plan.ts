import { claimSources } from '../manifest/claimSources.ts';
import { claimId, newClaims } from '../manifest/claims.ts';
import type { Manifest } from '../manifest/types.ts';
import type { Models } from '../model/types.ts';
import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';
import { loadDeployment } from './load.ts';
import type { Tree } from '../source/tree.ts';

/** Plans the transition from the recorded state to the models under rootFile (in tree, default the disk). */
export async function planDeployment(rootFile: string, ctx: Context, tree?: Tree): Promise<Plan> {
  const { models, manifest } = await loadDeployment(rootFile, tree);
  return planFromModels(models, manifest, ctx);
}

/** The plan to `manifest` (resolved from `models`), with the model position of every claim it adds (for refusals). */
export function planFromModels(models: Models, manifest: Manifest, ctx: Context): Plan {
  const current = stateStore(ctx).current(manifest.deployment);
  return withClaimSources(planTransition(current, manifest), models, current?.manifest);
}

/** The plan with `claimSources`: where `models` make each claim the plan adds to those of `before`. */
export function withClaimSources(plan: Plan, models: Models, before: Manifest | undefined): Plan {
  const added = [...newClaims(before, plan.desired).values()].flat().map(claimId);
  if (added.length === 0) return plan;
  const all = claimSources(models, plan.desired);
  const sources = Object.fromEntries(added.flatMap((id) => (all[id] ? [[id, all[id]]] : [])));
  return { ...plan, claimSources: sources };
}
