import type { Plan } from '../plan/types.ts';
import type { RecordedWith } from '../state/journal.ts';
import type { GenerationRecord } from '../state/records.ts';

/** The generation a plan records once its machines have (by apply, or by recovery completing it). */
export function generationOf(plan: Plan, record: RecordedWith): GenerationRecord {
  return {
    generation: plan.generation,
    createdAt: new Date().toISOString(),
    manifest: plan.desired,
    ...(record.source ? { source: record.source } : {}),
    ...(record.commit ? { commit: record.commit } : {}),
    ...(record.rolledBackTo !== undefined ? { rolledBackTo: record.rolledBackTo } : {}),
    ...(plan.pendingRestores?.length ? { pendingRestores: plan.pendingRestores } : {}),
  };
}
