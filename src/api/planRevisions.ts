import { resolve } from 'node:path';
import { StrataError } from '../errors.ts';
import { GitTree } from '../git/gitTree.ts';
import { findGitdir } from '../git/localRepo.ts';
import { resolveRevision } from '../git/revision.ts';
import { planTransition } from '../plan/diff.ts';
import { planPreview } from '../plan/preview.ts';
import type { Plan } from '../plan/types.ts';
import { stateStore, type Context } from './context.ts';
import { loadDeployment } from './load.ts';
import { withClaimSources } from './plan.ts';

export interface RevisionPlanOptions {
  /** A local repository (its working tree is never read). */
  repo: string;
  /** Branch, tag, remote branch (origin/main), full ref or commit sha. */
  head: string;
  /** The revision to compare with when nothing is recorded (default: compare with nothing). */
  base?: string;
  /** The root file inside the repository (default strata.yaml). */
  path?: string;
}

/**
 * What merging `head` would do: the head commit's models planned against the recorded state
 * when the state directory has one for the deployment, else against the `base` commit's
 * models. For pull-request comments (examples/ci/).
 */
export async function planRevisions(opts: RevisionPlanOptions, ctx: Context): Promise<Plan> {
  const gitdir = findGitdir(resolve(opts.repo));
  if (!gitdir) throw new StrataError('GIT_NOT_A_REPOSITORY', `${opts.repo} is not a Git repository`, { repo: opts.repo });
  const path = opts.path ?? 'strata.yaml';
  const headSha = await resolveRevision(gitdir, opts.head);
  const head = await loadDeployment(path, new GitTree({ gitdir, commit: headSha, label: `head ${headSha.slice(0, 12)}` }));
  const recorded = stateStore(ctx).current(head.manifest.deployment);
  let plan: Plan;
  let baseLabel: string;
  if (recorded) {
    plan = planTransition(recorded, head.manifest);
    baseLabel = `recorded generation ${recorded.generation}`;
  } else if (opts.base) {
    const baseSha = await resolveRevision(gitdir, opts.base);
    const base = await loadDeployment(path, new GitTree({ gitdir, commit: baseSha, label: `base ${baseSha.slice(0, 12)}` }));
    plan = planPreview(base.manifest, head.manifest);
    baseLabel = describe(opts.base, baseSha);
  } else {
    plan = planTransition(undefined, head.manifest);
    baseLabel = 'nothing deployed';
  }
  plan.revisions = { base: baseLabel, head: describe(opts.head, headSha) };
  // Claims are checked against the recorded state (src/api/claims.ts): their sources likewise.
  return withClaimSources(plan, head.models, recorded?.manifest);
}

function describe(rev: string, sha: string): string {
  return sha.startsWith(rev) ? sha.slice(0, 12) : `${rev} (${sha.slice(0, 12)})`;
}
