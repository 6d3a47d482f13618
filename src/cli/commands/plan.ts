import { lstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkPlanClaims } from '../../api/claims.ts';
import { checkStateNotLost, planDeployment } from '../../api/plan.ts';
import { planRevisions } from '../../api/planRevisions.ts';
import { UsageError } from '../../errors.ts';
import { renderPlan, type PlanFormat } from '../../plan/render.ts';
import { writeFileAtomic } from '../../lib/atomicFile.ts';
import { fileKind, shownPath } from '../../lib/regularFile.ts';
import { parse, rootFileOf, stateDirOf, type Io } from '../io.ts';
import { seconds } from './apply.ts';
import { contextFor } from '../../api/services.ts';

export const help = `strata plan [ROOT] [--format text|markdown|json] [--out PLAN.json]
strata plan [ROOT] --repo DIR [--base REF] [--head REF] [--format markdown]
  Shows what applying the models under ROOT (default strata.yaml) would change, against the
  recorded state in --state DIR (default: .strata beside ROOT, or $STRATA_STATE_DIR). Changes
  no machine. When that state records nothing of the deployment, it asks the machines whether
  they run a generation of it (lost state) and refuses with exit 2 if so. When the plan claims
  a port or a placed path anew on a machine, that machine is asked (read-only) what the other
  deployments on it hold; one of them holding it refuses the plan (exit 2). With --repo the
  default state directory is .strata beside ROOT in the repository's working directory, and
  no machine is asked whether it runs the deployment.
  --offline    ask no machine (apply still refuses such a claim, and machines running a
               generation the state does not know, before it changes anything)
  --connect-timeout S   seconds to wait for a machine asked so (default 10)
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
    offline: { type: 'boolean' },
    'connect-timeout': { type: 'string' },
  });
  const format = (values.json ? 'json' : (values.format ?? 'text')) as PlanFormat;
  if (!['text', 'markdown', 'json'].includes(format)) throw new UsageError(`--format must be text, markdown or json, not "${format}"`);
  if (!values.repo && (values.base || values.head)) throw new UsageError('--base and --head need --repo DIR');
  const root = rootFileOf(positionals);
  // With --repo, ROOT is a path inside the repository: the state is beside it in its working tree.
  const ctx = contextFor({ stateDir: stateDirOf(values, values.repo ? join(resolve(values.repo), root) : root), rootFile: root, connectTimeoutMs: seconds(values['connect-timeout'], '--connect-timeout') });
  const plan = values.repo
    ? await planRevisions({ repo: values.repo, base: values.base, head: values.head ?? 'HEAD', path: positionals[0] }, ctx)
    : await planDeployment(root, ctx);
  if (!values.offline) {
    if (!values.repo) await checkStateNotLost(plan, ctx, (m) => values.quiet || io.err(`strata: note: ${m}\n`));
    const { unchecked } = await checkPlanClaims(plan, ctx);
    for (const u of unchecked) io.err(`note: could not ask ${u.machine} what other deployments hold there (${u.error}); apply asks again before it changes anything\n`);
  }
  // A saved plan names its root file, so `strata apply PLAN.json` finds the same state directory.
  if (values.out) writePlanFile(values.out, renderPlan(values.repo ? plan : { ...plan, root: resolve(root) }, 'json'));
  io.out(renderPlan(plan, format));
  if (values.out && !values.quiet) io.err(`saved the plan to ${values.out}; apply it with: strata apply ${values.out}\n`);
  return 0;
}

/**
 * Saves the plan as a new file put in place atomically (never a torn plan), over a regular file
 * only: a FIFO, device, directory or symlink at the path is refused rather than written into.
 */
function writePlanFile(path: string, text: string): void {
  let existing;
  try {
    existing = lstatSync(path);
  } catch {
    existing = undefined;
  }
  if (existing && !existing.isFile()) throw new UsageError(`--out ${shownPath(path)} is ${fileKind(existing)}; name a regular file or a new one`);
  writeFileAtomic(path, text);
}
