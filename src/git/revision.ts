import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { StrataError } from '../errors.ts';

/** A branch, tag, remote branch, full ref or (abbreviated) commit sha, as a commit sha; `~N` and `^` walk first parents. */
export async function resolveRevision(gitdir: string, rev: string): Promise<string> {
  const ancestry = /^(.+?)((?:~\d*|\^)+)$/.exec(rev);
  if (ancestry) {
    let sha = await resolveRevision(gitdir, ancestry[1]!);
    const steps = [...ancestry[2]!.matchAll(/~(\d*)|\^/g)].reduce((n, m) => n + (m[0] === '^' ? 1 : Number(m[1] || 1)), 0);
    for (let i = 0; i < steps; i++) {
      const parent = (await git.readCommit({ fs, gitdir, oid: sha })).commit.parent[0];
      if (!parent) throw new StrataError('GIT_REF_NOT_FOUND', `"${rev}" goes past the first commit`, { ref: rev });
      sha = parent;
    }
    return sha;
  }
  try {
    return await git.resolveRef({ fs, gitdir, ref: rev });
  } catch {
    try {
      if (/^[0-9a-f]{4,40}$/.test(rev)) return await git.expandOid({ fs, gitdir, oid: rev });
    } catch {
      // fall through to the error below
    }
  }
  throw new StrataError('GIT_REF_NOT_FOUND', `no branch, tag or commit "${rev}" in ${gitdir}`, { ref: rev });
}
