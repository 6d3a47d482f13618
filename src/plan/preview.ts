import type { Manifest } from '../manifest/types.ts';
import { planTransition } from './diff.ts';
import type { Plan } from './types.ts';

/**
 * What going from one revision's manifest to another's would do, when no state is recorded to
 * compare with (`strata plan --repo --base`): a plan of kind `preview`, which apply refuses.
 * Its basis names no generation and the manifest compared with.
 */
export function planPreview(base: Manifest, head: Manifest): Plan {
  const plan = planTransition({ generation: 0, manifest: base }, head);
  return { ...plan, kind: 'preview', basis: { generation: null, manifestHash: base.hash }, generation: 1 };
}
