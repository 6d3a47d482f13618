import { applyDeployment } from '../../api/apply.ts';
import { validateDeployment } from '../../api/load.ts';
import { planRollback } from '../../api/rollback.ts';
import { UsageError } from '../../errors.ts';
import { renderPlan } from '../../plan/render.ts';
import { parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { progressPrinter } from '../progress.ts';

export const help = `strata rollback [ROOT] [--to N] [--deployment NAME]
  Returns the machines to the previous recorded generation (or generation N) at once,
  without reading Git or the models' artifacts; records it as a new generation.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { to: { type: 'string' }, deployment: { type: 'string' } });
  const to = values.to === undefined ? undefined : Number(values.to);
  if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new UsageError(`--to takes a generation number, not "${values.to}"`);
  const deployment = values.deployment ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = { stateDir: stateDirOf(values), onEvent: progressPrinter(io, Boolean(values.quiet || values.json)) };
  const { plan, target } = planRollback(deployment, ctx, to);
  if (!values.quiet && !values.json) io.err(renderPlan(plan, 'text'));
  const result = await applyDeployment(plan, ctx, { rolledBackTo: target, source: `rollback to generation ${target}` });
  io.out(values.json ? `${JSON.stringify({ rolledBackTo: target, ...result })}\n` : `${deployment}: rolled back to generation ${target} (recorded as generation ${result.generation})\n`);
  return 0;
}
