import type { Plan } from './types.ts';

/**
 * The plan numbered at least `next`, the first number its state directory never used (a
 * deleted generation file does not free its number, src/state/fileState.ts). A repair plan
 * (its generation is its basis's) keeps the number the machines have.
 */
export function numberedFrom(plan: Plan, next: number): Plan {
  if (plan.kind === 'repair' || plan.generation >= next) return plan;
  return { ...plan, generation: next };
}
