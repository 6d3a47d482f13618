import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';
import { loadDeployment } from './load.ts';
import type { Tree } from '../source/tree.ts';

/** Plans the transition from the recorded state to the models under rootFile (in tree, default the disk). */
export async function planDeployment(rootFile: string, ctx: Context, tree?: Tree): Promise<Plan> {
  const { manifest } = await loadDeployment(rootFile, tree);
  return planTransition(stateStore(ctx).current(manifest.deployment), manifest);
}
