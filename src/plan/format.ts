import { StrataError } from '../errors.ts';
import type { Plan, PlanKind } from './types.ts';

/** The plan document's format (docs/plan-format.md). */
export const PLAN_FORMAT = 'strata-plan/2';

export const PLAN_KINDS: readonly PlanKind[] = ['transition', 'rollback', 'destroy', 'repair', 'preview'];
const KINDS: ReadonlySet<string> = new Set(PLAN_KINDS);

/**
 * A saved plan (`strata plan --out`), read back: this format, or `strata-plan/1`, which had no
 * `kind` (its repair plans were those recording the generation they started from; nothing
 * else of it differs). Anything else is PLAN_INVALID naming `where`.
 */
export function planFromDocument(doc: unknown, where: string): Plan {
  const fields = typeof doc === 'object' && doc !== null ? doc : {};
  const format = 'format' in fields ? fields.format : undefined;
  if (format === 'strata-plan/1' && isPlanLike(fields)) {
    const { generation, basis } = fields;
    return { ...fields, format: PLAN_FORMAT, kind: generation === basis.generation ? 'repair' : 'transition' };
  }
  if (format !== PLAN_FORMAT) throw new StrataError('PLAN_INVALID', `${where} is not a strata plan (format ${PLAN_FORMAT}, or strata-plan/1)`, { path: where });
  const kind = 'kind' in fields ? fields.kind : undefined;
  if (typeof kind !== 'string' || !KINDS.has(kind)) throw new StrataError('PLAN_INVALID', `${where}: kind must be one of ${[...KINDS].join(', ')}`, { path: where });
  if (!isPlanLike(fields)) throw new StrataError('PLAN_INVALID', `${where}: not a plan (deployment, basis and generation are required)`, { path: where });
  return fields as Plan;
}

/** The fields apply checks first; the rest is checked as it is used (as before format 2). */
function isPlanLike(x: object): x is Omit<Plan, 'format' | 'kind'> & { format: unknown } {
  const p = x as Partial<Plan>;
  return typeof p.deployment === 'string' && typeof p.generation === 'number' && typeof p.basis === 'object' && p.basis !== null;
}
