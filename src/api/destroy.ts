import { StateError } from '../errors.ts';
import { hashOf } from '../manifest/hash.ts';
import type { Manifest } from '../manifest/types.ts';
import { planTransition } from '../plan/diff.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';

/** Plans taking down everything the deployment runs (NixOps' destroy): a generation with no items. */
export function planDestroy(deployment: string, ctx: Context): Plan {
  const current = stateStore(ctx).current(deployment);
  if (!current) throw new StateError('NOTHING_DEPLOYED', `deployment ${deployment} has nothing deployed`, { deployment });
  const machines = Object.fromEntries(Object.entries(current.manifest.machines).map(([k, m]) => [k, { ...m, items: [] }]));
  const empty: Manifest = { ...current.manifest, machines, artifacts: {}, hash: hashOf({ machines }) };
  return planTransition(current, empty);
}
