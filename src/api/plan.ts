import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';
import { loadDeployment } from './load.ts';

/** Plans the transition from the recorded state to the models under rootFile. */
export function planDeployment(rootFile: string, ctx: Context): Plan {
  const { manifest } = loadDeployment(rootFile);
  return planTransition(stateStore(ctx).current(manifest.deployment), manifest);
}
