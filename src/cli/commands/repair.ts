import { repairDeployment } from '../../api/drift.ts';
import { validateDeployment } from '../../api/load.ts';
import { renderPlan } from '../../plan/render.ts';
import { nameOption, parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { progressPrinter } from '../progress.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata repair [ROOT] [--deployment NAME]
  Asks every machine what drifted from the recorded generation (as \`strata status\` does)
  and puts back only those items: a process that died is started again, a placed file
  that was changed or removed is rewritten. Records no new generation. Artifacts missing
  from a machine's store are read from the paths recorded with the generation.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { deployment: { type: 'string' } });
  const deployment = nameOption(values.deployment, '--deployment') ?? (await validateDeployment(rootFileOf(positionals))).name;
  const ctx = contextFor({ stateDir: stateDirOf(values, rootFileOf(positionals)), rootFile: rootFileOf(positionals), onEvent: progressPrinter(io, Boolean(values.quiet || values.json)) });
  const shown = !values.quiet && !values.json;
  const { probe, result } = await repairDeployment(deployment, ctx, { onPlan: (plan) => shown && io.err(renderPlan(plan, 'text')) });
  const { drifts } = probe;
  if (!result) {
    io.out(values.json ? `${JSON.stringify({ repaired: 0 })}\n` : `${deployment}: nothing drifted\n`);
    return 0;
  }
  io.out(values.json ? `${JSON.stringify({ repaired: drifts.length, drifts, ...result })}\n` : `${deployment}: restored ${drifts.length} drifted item${drifts.length === 1 ? '' : 's'}\n`);
  return 0;
}
