import { applyDeployment } from '../../api/apply.ts';
import { planDestroy } from '../../api/destroy.ts';
import { validateDeployment } from '../../api/load.ts';
import { isEmptyPlan } from '../../plan/diff.ts';
import { renderPlan } from '../../plan/render.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { unlessStateLost } from '../lostState.ts';
import { progressPrinter } from '../progress.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata destroy [ROOT] [--deployment NAME]
  Stops and removes every service and machine-level item the deployment runs, dependents
  first, and records that as a new generation (\`strata rollback\` brings it back).
  Artifacts stay in the machines' stores; directories that still hold data are kept.
  With nothing recorded, it asks the machines of ROOT's models whether they run the deployment
  anyway (lost state) and then refuses with exit 2, saying where the state probably is.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { deployment: { type: 'string' } });
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)), rootFile: rootFileOf(positionals), onEvent: progressPrinter(io, Boolean(values.quiet || values.json)) });
  const plan = await unlessStateLost(() => planDestroy(deployment, ctx), values.deployment ? undefined : rootFileOf(positionals), ctx, io, Boolean(values.quiet || values.json));
  if (!isEmptyPlan(plan) && !values.quiet && !values.json) io.err(renderPlan(plan, 'text'));
  const result = await applyDeployment(plan, ctx, { source: 'destroy' });
  io.out(values.json ? `${JSON.stringify(result)}\n` : `${deployment}: everything stopped and removed (generation ${result.generation})\n`);
  return 0;
}
