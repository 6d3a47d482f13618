import { checkMachinesKnown } from '../apply/recordedCheck.ts';
import { StateError } from '../errors.ts';
import { claimSources } from '../manifest/claimSources.ts';
import { hasNewClaims, newClaims } from '../manifest/claims.ts';
import type { Manifest } from '../manifest/types.ts';
import type { Models } from '../model/types.ts';
import { planTransition } from '../plan/diff.ts';
import { numberedFrom } from '../plan/numbering.ts';
import type { Plan } from '../plan/types.ts';
import type { Tree } from '../tree/tree.ts';
import { stateStore, type Context } from './context.ts';
import { loadDeployment } from './load.ts';
import { askMachines } from './machineRecords.ts';
import { lostStateHint } from './stateLocation.ts';

/** Plans the transition from the recorded state to the models under rootFile (in tree, default the disk). Touches no machine. */
export async function planDeployment(rootFile: string, ctx: Context, tree?: Tree): Promise<Plan> {
  const { models, manifest } = await loadDeployment(rootFile, tree);
  return planFromModels(models, manifest, ctx);
}

/** The plan to `manifest` (resolved from `models`), with the model position of every claim it adds (for refusals). */
export function planFromModels(models: Models, manifest: Manifest, ctx: Context): Plan {
  const store = stateStore(ctx);
  const current = store.current(manifest.deployment);
  const plan = planTransition(current, manifest);
  return withClaimSources(numberedFrom(plan, store.nextGeneration(manifest.deployment)), models, current?.manifest);
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

/**
 * When the state directory records nothing of the deployment (a first deployment, or lost
 * state), asks the plan's machines whether they run a generation of it: STATE_UNKNOWN_GENERATION
 * with a hint where the state is when they do. With recorded state it contacts no machine (a
 * no-change plan stays local; apply checks every machine it locks). Machines that cannot be
 * asked are passed to `warn` and do not stop the plan: apply will ask them again.
 */
export async function checkStateNotLost(plan: Plan, ctx: Context, warn: (message: string) => void = () => {}): Promise<void> {
  if (plan.basis.generation !== null) return;
  const answers = await askMachines(plan.deployment, Object.values(plan.desired.machines), ctx);
  for (const a of answers) if (a.error) warn(`could not ask ${a.machine} whether it runs a generation of ${plan.deployment}: ${a.error}`);
  withHint(() => checkMachinesKnown(plan.deployment, answers, stateStore(ctx)), plan.deployment, ctx);
}

/**
 * For commands that found nothing recorded (status, destroy, rollback): do the machines of the
 * models under rootFile run a generation of the deployment anyway? STATE_UNKNOWN_GENERATION with
 * the hint if so, rather than "nothing deployed" while its services run.
 */
export async function checkNothingRuns(rootFile: string, ctx: Context, warn?: (message: string) => void): Promise<void> {
  const { manifest } = await loadDeployment(rootFile);
  if (stateStore(ctx).current(manifest.deployment)) return;
  await checkStateNotLost(planTransition(undefined, manifest), ctx, warn);
}

/** Runs f; a STATE_UNKNOWN_GENERATION it throws gets the hint where the state probably is. */
export function withHint<T>(f: () => T, deployment: string, ctx: Context): T {
  try {
    return f();
  } catch (e) {
    throw hinted(e, deployment, ctx);
  }
}

export function hinted(e: unknown, deployment: string, ctx: Context): unknown {
  if (!(e instanceof StateError) || e.code !== 'STATE_UNKNOWN_GENERATION') return e;
  return new StateError(e.code, `${e.message}\n${lostStateHint(deployment, ctx)}`, e.data);
}
