import * as fs from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { fetchError } from './fetchError.ts';
import { hasCommit, peelToCommit, requireCommit, type ObjectSource } from './objects.ts';
import type { Transport } from './transport.ts';
import { refNotFound } from './wanted.ts';

/** A remote's clone in the cache directory (objects and refs only, no checkout). */
export interface Mirror extends ObjectSource {
  /** The directory isomorphic-git is given as the (never checked out) work tree. */
  cacheDir: string;
  /** For authentication errors: the user name tried, and whether a password was given. */
  username: string;
  hasPassword: boolean;
  /** A clone with more packs than this is cloned afresh (isomorphic-git never repacks). */
  maxPacks: number;
}

/** Brings the mirror up to date with the remote and returns the commit it follows. */
export async function syncMirror(m: Mirror, t: Transport): Promise<string> {
  const fresh = !fs.existsSync(join(m.gitdir, 'config')) || (await originUrl(m.gitdir)) !== t.url || (await packCount(m.gitdir)) > m.maxPacks;
  return fresh ? cloneAfresh(m, t) : fetchInto(m, t);
}

/**
 * Clones into a new directory and swaps it in only when the clone succeeded, so a failed
 * clone leaves any previous one in place (and a failed first clone leaves nothing).
 */
async function cloneAfresh(m: Mirror, t: Transport): Promise<string> {
  const gitdir = m.gitdir;
  const fresh = `${gitdir}.new-${process.pid}`;
  await rm(fresh, { recursive: true, force: true });
  try {
    const commit = await cloneInto({ ...m, gitdir: fresh }, t);
    const old = `${gitdir}.old-${process.pid}`;
    if (fs.existsSync(gitdir)) await rename(gitdir, old);
    await rename(fresh, gitdir);
    await rm(old, { recursive: true, force: true });
    return commit;
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
}

async function cloneInto(m: Mirror, t: Transport): Promise<string> {
  const w = m.wanted;
  await guard(m, () =>
    git.clone({
      fs,
      http: t.http,
      dir: m.cacheDir,
      gitdir: m.gitdir,
      url: t.url,
      ref: w.kind === 'commit' ? undefined : w.name,
      singleBranch: w.kind !== 'commit',
      noCheckout: true,
      noTags: w.kind !== 'tag',
      onAuth: t.onAuth,
      onAuthFailure: t.onAuthFailure,
      cache: m.cache,
    }),
  );
  if (w.kind === 'commit') return pinnedCommit(m, t, w.sha);
  let oid: string;
  try {
    oid = await git.resolveRef({ fs, gitdir: m.gitdir, ref: w.kind === 'branch' ? `refs/remotes/origin/${w.name}` : `refs/tags/${w.name}` });
  } catch (e) {
    throw refNotFound(w, m.label, e);
  }
  const commit = await peelToCommit(m, oid);
  if (w.kind === 'branch') await rememberBranch(m.gitdir, w.name, commit);
  return commit;
}

async function fetchInto(m: Mirror, t: Transport): Promise<string> {
  const w = m.wanted;
  if (w.kind === 'commit') return pinnedCommit(m, t, w.sha);
  const result = await guard(m, () =>
    git.fetch({
      fs,
      http: t.http,
      gitdir: m.gitdir,
      url: t.url,
      remote: 'origin',
      ref: w.name,
      remoteRef: `refs/${w.kind === 'branch' ? 'heads' : 'tags'}/${w.name}`,
      singleBranch: true,
      tags: false,
      onAuth: t.onAuth,
      onAuthFailure: t.onAuthFailure,
      cache: m.cache,
    }),
  );
  if (!result.fetchHead) throw refNotFound(w, m.label, undefined);
  const commit = await peelToCommit(m, result.fetchHead);
  if (w.kind === 'branch') await rememberBranch(m.gitdir, w.name, commit);
  return commit;
}

/** A pinned commit: used as is if present, else every branch and tag is fetched once. */
async function pinnedCommit(m: Mirror, t: Transport, sha: string): Promise<string> {
  if (await hasCommit(m, sha)) return sha;
  await guard(m, () =>
    git.fetch({ fs, http: t.http, gitdir: m.gitdir, url: t.url, remote: 'origin', singleBranch: false, tags: true, onAuth: t.onAuth, onAuthFailure: t.onAuthFailure, cache: m.cache }),
  );
  await requireCommit(m, sha);
  return sha;
}

/**
 * Points the clone's local branch at the synced commit: isomorphic-git offers the local
 * branch as its "have" on the next fetch, so only new objects are sent.
 */
async function rememberBranch(gitdir: string, branch: string, commit: string): Promise<void> {
  await git.writeRef({ fs, gitdir, ref: `refs/heads/${branch}`, value: commit, force: true });
}

async function originUrl(gitdir: string): Promise<string | undefined> {
  try {
    return (await git.getConfig({ fs, gitdir, path: 'remote.origin.url' })) as string | undefined;
  } catch {
    return undefined;
  }
}

async function packCount(gitdir: string): Promise<number> {
  try {
    return (await readdir(join(gitdir, 'objects', 'pack'))).filter((f) => f.endsWith('.pack')).length;
  } catch {
    return 0;
  }
}

/** Runs an isomorphic-git network operation, turning its errors into GitErrors. */
async function guard<T>(m: Mirror, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw fetchError(e, { url: m.label, username: m.username, hasPassword: m.hasPassword, refNotFound: (cause) => refNotFound(m.wanted, m.label, cause) });
  }
}
