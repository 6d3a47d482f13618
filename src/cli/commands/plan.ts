import { writeFileSync } from 'node:fs';
import { planDeployment } from '../../api/plan.ts';
import { UsageError } from '../../errors.ts';
import { renderPlan, type PlanFormat } from '../../plan/render.ts';
import { parse, rootFileOf, stateDirOf, type Io } from '../io.ts';

export const help = `strata plan [ROOT] [--format text|markdown|json] [--out PLAN.json]
  Shows what applying the models under ROOT (default strata.yaml) would change, against the
  recorded state in --state DIR (default .strata). Touches no machine.
  --format F   text (default), markdown (for a pull-request comment) or json
  --out FILE   also save the plan as JSON, for \`strata apply FILE\``;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { format: { type: 'string' }, out: { type: 'string' } });
  const format = (values.json ? 'json' : (values.format ?? 'text')) as PlanFormat;
  if (!['text', 'markdown', 'json'].includes(format)) throw new UsageError(`--format must be text, markdown or json, not "${format}"`);
  const plan = await planDeployment(rootFileOf(positionals), { stateDir: stateDirOf(values) });
  if (values.out) writeFileSync(values.out, renderPlan(plan, 'json'));
  io.out(renderPlan(plan, format));
  if (values.out && !values.quiet) io.err(`saved the plan to ${values.out}; apply it with: strata apply ${values.out}\n`);
  return 0;
}
