import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { GitError } from './errors.ts';
import { describeWanted, type Wanted } from './wanted.ts';

/** Where commits are looked up: a git directory, its object cache, and how to name it in errors. */
export interface ObjectSource {
  gitdir: string;
  cache: object;
  /** The repository for people (URL without credentials, or directory). */
  label: string;
  wanted: Wanted;
  /** Appended to "commit X is not in LABEL" (e.g. why a remote may lack it). */
  missingHint: string;
}

/** Follows annotated tags to the commit they name. */
export async function peelToCommit(src: ObjectSource, oid: string): Promise<string> {
  for (let i = 0; i < 10; i++) {
    let obj;
    try {
      obj = await git.readObject({ fs, gitdir: src.gitdir, oid, cache: src.cache });
    } catch (e) {
      throw new GitError('GIT_OBJECT_MISSING', `${describeWanted(src.wanted)} of ${src.label} names ${oid}, which is missing from the repository`, { url: src.label, oid }, { cause: e });
    }
    if (obj.type === 'commit') return oid;
    if (obj.type !== 'tag') break;
    oid = (obj.object as { object: string }).object;
  }
  throw new GitError('GIT_REF_NOT_FOUND', `${describeWanted(src.wanted)} of ${src.label} does not name a commit`, { url: src.label });
}

export async function hasCommit(src: ObjectSource, sha: string): Promise<boolean> {
  try {
    await git.readCommit({ fs, gitdir: src.gitdir, oid: sha, cache: src.cache });
    return true;
  } catch {
    return false;
  }
}

export async function requireCommit(src: ObjectSource, sha: string): Promise<void> {
  if (!(await hasCommit(src, sha))) {
    throw new GitError('GIT_REF_NOT_FOUND', `commit ${sha} is not in ${src.label}${src.missingHint}`, { url: src.label, commit: sha });
  }
}
