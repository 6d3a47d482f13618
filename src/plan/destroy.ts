import { hashOf } from '../manifest/hash.ts';
import type { Manifest } from '../manifest/types.ts';
import type { RecordedState } from '../manifest/recorded.ts';
import { planTransition } from './diff.ts';
import type { Plan } from './types.ts';

/** Plans taking down everything the deployment runs (NixOps' destroy): a generation whose machines have no items. */
export function planDestroy(current: RecordedState): Plan {
  const machines = Object.fromEntries(Object.entries(current.manifest.machines).map(([k, m]) => [k, { ...m, items: [] }]));
  const empty: Manifest = { ...current.manifest, machines, artifacts: {}, hash: hashOf({ machines }) };
  return planTransition(current, empty, 'destroy');
}
