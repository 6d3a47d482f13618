import { applyDeployment } from '../../api/apply.ts';
import { planDestroy } from '../../api/destroy.ts';
import { validateDeployment } from '../../api/load.ts';
import { isEmptyPlan } from '../../plan/diff.ts';
import { renderPlan } from '../../plan/render.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { progressPrinter } from '../progress.ts';

export const help = `strata destroy [ROOT] [--deployment NAME]
  Stops and removes every service and machine-level item the deployment runs, dependents
  first, and records that as a new generation (\`strata rollback\` brings it back).
  Artifacts stay in the machines' stores; directories that still hold data are kept.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { deployment: { type: 'string' } });
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = { stateDir: stateDirOf(values), onEvent: progressPrinter(io, Boolean(values.quiet || values.json)) };
  const plan = planDestroy(deployment, ctx);
  if (!isEmptyPlan(plan) && !values.quiet && !values.json) io.err(renderPlan(plan, 'text'));
  const result = await applyDeployment(plan, ctx, { source: 'destroy' });
  io.out(values.json ? `${JSON.stringify(result)}\n` : `${deployment}: everything stopped and removed (generation ${result.generation})\n`);
  return 0;
}
