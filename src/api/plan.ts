import { claimSources } from '../manifest/claimSources.ts';
import { hasNewClaims, newClaims } from '../manifest/claims.ts';
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

/**
 * The plan with `claimSources`: where `models` make each claim the plan adds to those of `before`.
 * js-yaml read the model files without positions, so finding them costs a `yaml` parse of each
 * file, and only a refusal or a written plan (JSON) reads them: they are computed on first read
 * (an enumerable property, so JSON and spreads carry them), then kept.
 */
export function withClaimSources(plan: Plan, models: Models, before: Manifest | undefined): Plan {
  if (!hasNewClaims(before, plan.desired)) return plan;
  let from: { models: Models; before: Manifest | undefined; desired: Manifest } | undefined = { models, before, desired: plan.desired };
  let sources: Plan['claimSources'];
  const out: Plan = { ...plan };
  Object.defineProperty(out, 'claimSources', {
    enumerable: true,
    configurable: true,
    get() {
      if (from) {
        const added = [...newClaims(from.before, from.desired).values()].flat();
        sources = Object.fromEntries(Object.entries(claimSources(from.models, added)));
        from = undefined;
      }
      return sources;
    },
    set(value: Plan['claimSources']) {
      sources = value;
      from = undefined;
    },
  });
  return out;
}
