import { GitError } from './errors.ts';
import type { GitRepositoryConfig } from './options.ts';

/** What a repository source follows: a branch, a tag, or one pinned commit. */
export type Wanted = { kind: 'branch'; name: string } | { kind: 'tag'; name: string } | { kind: 'commit'; sha: string };

export function wantedOf(config: GitRepositoryConfig): Wanted {
  if (config.commit) return { kind: 'commit', sha: config.commit };
  if (config.tag) return { kind: 'tag', name: config.tag };
  return { kind: 'branch', name: config.branch ?? 'main' };
}

/** The full ref a branch or tag is followed by (a pinned commit is its own sha). */
export function wantedRef(w: Wanted): string {
  return w.kind === 'commit' ? w.sha : `refs/${w.kind === 'branch' ? 'heads' : 'tags'}/${w.name}`;
}

/** `branch main`, `tag v1`, `commit abc…`: for messages. */
export function describeWanted(w: Wanted): string {
  return w.kind === 'commit' ? `commit ${w.sha}` : `${w.kind} ${w.name}`;
}

export function refNotFound(w: Wanted, label: string, cause: unknown): GitError {
  const data = w.kind === 'commit' ? { commit: w.sha } : { [w.kind]: w.name };
  return new GitError('GIT_REF_NOT_FOUND', `${describeWanted(w)} does not exist in ${label}`, { url: label, ...data }, cause ? { cause } : undefined);
}
