import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkStateNotLost, planDeployment } from '../../api/plan.ts';
import { planRevisions } from '../../api/planRevisions.ts';
import { UsageError } from '../../errors.ts';
import { renderPlan, type PlanFormat } from '../../plan/render.ts';
import { parse, rootFileOf, stateDirOf, type Io } from '../io.ts';

export const help = `strata plan [ROOT] [--format text|markdown|json] [--out PLAN.json]
strata plan [ROOT] --repo DIR [--base REF] [--head REF] [--format markdown]
  Shows what applying the models under ROOT (default strata.yaml) would change, against the
  recorded state in --state DIR (default: .strata beside ROOT, or $STRATA_STATE_DIR). Changes
  nothing. When that state records nothing of the deployment, it asks the machines whether
  they run a generation of it (lost state) and refuses with exit 2 if so; with recorded state
  it contacts no machine. With --repo it never contacts a machine, and the default state
  directory is .strata beside ROOT in the repository's working directory.
  --format F   text (default), markdown (for a pull-request comment) or json
  --out FILE   also save the plan as JSON, for \`strata apply FILE\`
  --repo DIR   read the models from Git commits of the repository DIR instead of the disk;
               ROOT is then a path inside the repository
  --head REF   the revision to plan (default HEAD): branch, tag, origin/x, sha
  --base REF   compare with this revision when --state has nothing recorded for the deployment`;

export async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    format: { type: 'string' },
    out: { type: 'string' },
    repo: { type: 'string' },
    base: { type: 'string' },
    head: { type: 'string' },
  });
  const format = (values.json ? 'json' : (values.format ?? 'text')) as PlanFormat;
  if (!['text', 'markdown', 'json'].includes(format)) throw new UsageError(`--format must be text, markdown or json, not "${format}"`);
  if (!values.repo && (values.base || values.head)) throw new UsageError('--base and --head need --repo DIR');
  const root = rootFileOf(positionals);
  // With --repo, ROOT is a path inside the repository: the state is beside it in its working tree.
  const ctx = { stateDir: stateDirOf(values, values.repo ? join(resolve(values.repo), root) : root), rootFile: root };
  const plan = values.repo
    ? await planRevisions({ repo: values.repo, base: values.base, head: values.head ?? 'HEAD', path: positionals[0] }, ctx)
    : await planDeployment(root, ctx);
  if (!values.repo) await checkStateNotLost(plan, ctx, (m) => values.quiet || io.err(`strata: note: ${m}\n`));
  // A saved plan names its root file, so `strata apply PLAN.json` finds the same state directory.
  if (values.out) writeFileSync(values.out, renderPlan(values.repo ? plan : { ...plan, root: resolve(root) }, 'json'));
  io.out(renderPlan(plan, format));
  if (values.out && !values.quiet) io.err(`saved the plan to ${values.out}; apply it with: strata apply ${values.out}\n`);
  return 0;
}
