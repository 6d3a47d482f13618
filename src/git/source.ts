import * as fs from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { writeFileAtomic } from '../lib/atomicFile.ts';
import { GitError } from './errors.ts';
import type { GitRepositoryConfig } from './options.ts';
import { fetchError } from './fetchError.ts';
import { GitTree } from './gitTree.ts';
import { findGitdir } from './localRepo.ts';
import type { SshExchange } from './sshTransport.ts';
import { openTransport, type Transport } from './transport.ts';
import { describeRepo, parseRepoUrl, repoName, type RepoUrl } from './url.ts';
import { watchRefs } from './watch.ts';

export interface SyncResult {
  /** The commit the configured branch, tag or commit resolves to now. */
  commit: string;
  /** What was followed: `refs/heads/NAME`, `refs/tags/NAME`, or the pinned sha. */
  ref: string;
  /** The commit the previous sync resolved to (kept across restarts in the cache dir). */
  previous?: string;
  /** True when commit does not descend from previous: a force push, a moved tag, a rollback. */
  rewritten: boolean;
}

export interface CommitInfo {
  sha: string;
  author: { name: string; email: string };
  message: string;
  /** Author time, ISO 8601 (UTC). */
  time: string;
}

export interface GitSourceOptions {
  /** Base of a relative local path in the URL (default: the process's cwd). */
  cwd?: string;
  /** Called after each request served over SSH (logs, metrics, tests). */
  onSshExchange?: (e: SshExchange) => void;
  /** Debounce of watch() (default 100 ms). */
  watchDebounceMs?: number;
  /** A remote clone with more packs than this is cloned afresh (isomorphic-git never repacks). */
  maxPacks?: number;
}

type Wanted = { kind: 'branch'; name: string } | { kind: 'tag'; name: string } | { kind: 'commit'; sha: string };

interface Synced {
  commit: string;
  ref: string;
}

const SYNCED_FILE = 'synced.json';
const CLONE_DIR = 'repo.git';

/**
 * One configured repository, read with isomorphic-git. A remote (HTTP(S), or SSH through
 * SshBridge) is cloned once into `cacheDir/repo.git` (objects and refs only, no checkout) and
 * fetched on later syncs; a local repository is read in place (its git directory only: never
 * cloned, its working tree never read or written). Syncs are serialised.
 */
export class GitSource {
  readonly remote: RepoUrl;
  /** The repository for people: its URL without credentials, or its directory. */
  readonly label: string;
  /** Short name for tree labels, e.g. `org/repo`. */
  readonly name: string;
  private readonly wanted: Wanted;
  private localGitdir?: string;
  private cache: object = {};
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly config: GitRepositoryConfig,
    readonly cacheDir: string,
    private readonly opts: GitSourceOptions = {},
  ) {
    this.remote = parseRepoUrl(config.url, opts.cwd);
    this.label = describeRepo(this.remote);
    this.name = repoName(this.remote);
    this.wanted = config.commit
      ? { kind: 'commit', sha: config.commit }
      : config.tag
        ? { kind: 'tag', name: config.tag }
        : { kind: 'branch', name: config.branch ?? 'main' };
  }

  /** The git directory objects are read from: the local repository's, or the clone's. */
  get gitdir(): string {
    if (this.remote.kind !== 'local') return join(this.cacheDir, CLONE_DIR);
    this.localGitdir ??= findGitdir(this.remote.dir);
    if (!this.localGitdir) throw this.notARepository();
    return this.localGitdir;
  }

  /** Brings the cache up to date (remote) and resolves the configured branch, tag or commit. */
  sync(): Promise<SyncResult> {
    const run = this.queue.then(() => this.syncNow());
    this.queue = run.catch(() => {});
    return run;
  }

  /** The files of one commit (normally one sync returned). */
  tree(commit: string): GitTree {
    return new GitTree({ gitdir: this.gitdir, commit, label: `${this.name}@${commit.slice(0, 7)}`, cache: this.cache });
  }

  async commitInfo(sha: string): Promise<CommitInfo> {
    let c;
    try {
      c = (await git.readCommit({ fs, gitdir: this.gitdir, oid: sha, cache: this.cache })).commit;
    } catch (e) {
      throw new GitError('GIT_OBJECT_MISSING', `commit ${sha} is not in ${this.label}${this.remote.kind === 'local' ? '' : ' (synced so far)'}`, { url: this.label, commit: sha }, { cause: e });
    }
    return {
      sha,
      author: { name: c.author.name, email: c.author.email },
      message: c.message,
      time: new Date(c.author.timestamp * 1000).toISOString(),
    };
  }

  /**
   * Calls onChange (debounced) whenever a branch, tag or HEAD of a local repository may have
   * moved; returns a stop function. Remotes have nothing to watch (they are polled, or a
   * webhook calls), so for them this does nothing.
   */
  watch(onChange: () => void): () => void {
    if (this.remote.kind !== 'local') return () => {};
    return watchRefs(this.gitdir, onChange, this.opts.watchDebounceMs ?? 100);
  }

  private async syncNow(): Promise<SyncResult> {
    await mkdir(this.cacheDir, { recursive: true });
    const last = await this.readSynced();
    // A fresh object cache per sync: a local repository may have been repacked in between.
    this.cache = {};
    const commit = this.remote.kind === 'local' ? await this.resolveLocal() : await this.fetchRemote();
    const ref = this.wanted.kind === 'commit' ? this.wanted.sha : `refs/${this.wanted.kind === 'branch' ? 'heads' : 'tags'}/${this.wanted.name}`;
    const previous = last?.commit;
    const rewritten = previous !== undefined && previous !== commit && !(await this.descends(commit, previous));
    if (previous !== commit || last?.ref !== ref) writeFileAtomic(join(this.cacheDir, SYNCED_FILE), `${JSON.stringify({ commit, ref } satisfies Synced)}\n`);
    return { commit, ref, ...(previous !== undefined ? { previous } : {}), rewritten };
  }

  private async descends(commit: string, ancestor: string): Promise<boolean> {
    try {
      return await git.isDescendent({ fs, gitdir: this.gitdir, oid: commit, ancestor, depth: -1, cache: this.cache });
    } catch {
      // A commit we cannot walk to (gone after a force push and a re-clone) is not an ancestor.
      return false;
    }
  }

  private async readSynced(): Promise<Synced | undefined> {
    try {
      const v = JSON.parse(await readFile(join(this.cacheDir, SYNCED_FILE), 'utf8')) as Partial<Synced>;
      return typeof v.commit === 'string' && typeof v.ref === 'string' ? { commit: v.commit, ref: v.ref } : undefined;
    } catch {
      return undefined;
    }
  }

  // ---- local repositories ----

  private async resolveLocal(): Promise<string> {
    const gitdir = this.gitdir;
    const w = this.wanted;
    if (w.kind === 'commit') {
      await this.requireCommit(w.sha, gitdir);
      return w.sha;
    }
    const full = `refs/${w.kind === 'branch' ? 'heads' : 'tags'}/${w.name}`;
    let oid: string;
    try {
      oid = await git.resolveRef({ fs, gitdir, ref: full });
    } catch (e) {
      throw this.refNotFound(e);
    }
    return this.peel(oid, gitdir);
  }

  // ---- remotes ----

  private async fetchRemote(): Promise<string> {
    const gitdir = this.gitdir;
    const transport = await this.transport();
    try {
      const fresh =
        !fs.existsSync(join(gitdir, 'config')) ||
        (await this.originUrl(gitdir)) !== transport.url ||
        (await this.packCount(gitdir)) > (this.opts.maxPacks ?? 64);
      return fresh ? await this.cloneRemote(gitdir, transport) : await this.fetchInto(gitdir, transport);
    } finally {
      await transport.close();
    }
  }

  /**
   * Clones into a new directory and swaps it in only when the clone succeeded, so a failed
   * clone leaves any previous one in place (and a failed first clone leaves nothing).
   */
  private async cloneRemote(gitdir: string, t: Transport): Promise<string> {
    const fresh = `${gitdir}.new-${process.pid}`;
    await rm(fresh, { recursive: true, force: true });
    try {
      const commit = await this.cloneInto(fresh, t);
      const old = `${gitdir}.old-${process.pid}`;
      if (fs.existsSync(gitdir)) await rename(gitdir, old);
      await rename(fresh, gitdir);
      await rm(old, { recursive: true, force: true });
      return commit;
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  }

  private async cloneInto(gitdir: string, t: Transport): Promise<string> {
    const w = this.wanted;
    await this.guard(() =>
      git.clone({
        fs,
        http: t.http,
        dir: this.cacheDir,
        gitdir,
        url: t.url,
        ref: w.kind === 'commit' ? undefined : w.name,
        singleBranch: w.kind !== 'commit',
        noCheckout: true,
        noTags: w.kind !== 'tag',
        onAuth: t.onAuth,
        onAuthFailure: t.onAuthFailure,
        cache: this.cache,
      }),
    );
    if (w.kind === 'commit') return this.pinnedCommit(gitdir, t);
    let oid: string;
    try {
      oid = await git.resolveRef({ fs, gitdir, ref: w.kind === 'branch' ? `refs/remotes/origin/${w.name}` : `refs/tags/${w.name}` });
    } catch (e) {
      throw this.refNotFound(e);
    }
    const commit = await this.peel(oid, gitdir);
    if (w.kind === 'branch') await this.rememberBranch(gitdir, w.name, commit);
    return commit;
  }

  private async fetchInto(gitdir: string, t: Transport): Promise<string> {
    const w = this.wanted;
    if (w.kind === 'commit') return this.pinnedCommit(gitdir, t);
    const remoteRef = `refs/${w.kind === 'branch' ? 'heads' : 'tags'}/${w.name}`;
    const result = await this.guard(() =>
      git.fetch({
        fs,
        http: t.http,
        gitdir,
        url: t.url,
        remote: 'origin',
        ref: w.name,
        remoteRef,
        singleBranch: true,
        tags: false,
        onAuth: t.onAuth,
        onAuthFailure: t.onAuthFailure,
        cache: this.cache,
      }),
    );
    if (!result.fetchHead) throw this.refNotFound(undefined);
    const commit = await this.peel(result.fetchHead, gitdir);
    if (w.kind === 'branch') await this.rememberBranch(gitdir, w.name, commit);
    return commit;
  }

  /** A pinned commit: used as is if present, else every branch and tag is fetched once. */
  private async pinnedCommit(gitdir: string, t: Transport): Promise<string> {
    const sha = (this.wanted as { sha: string }).sha;
    if (await this.hasCommit(sha, gitdir)) return sha;
    await this.guard(() =>
      git.fetch({ fs, http: t.http, gitdir, url: t.url, remote: 'origin', singleBranch: false, tags: true, onAuth: t.onAuth, onAuthFailure: t.onAuthFailure, cache: this.cache }),
    );
    await this.requireCommit(sha, gitdir);
    return sha;
  }

  /**
   * Points the clone's local branch at the synced commit: isomorphic-git offers the local
   * branch as its "have" on the next fetch, so only new objects are sent.
   */
  private async rememberBranch(gitdir: string, branch: string, commit: string): Promise<void> {
    await git.writeRef({ fs, gitdir, ref: `refs/heads/${branch}`, value: commit, force: true });
  }

  private async originUrl(gitdir: string): Promise<string | undefined> {
    try {
      return (await git.getConfig({ fs, gitdir, path: 'remote.origin.url' })) as string | undefined;
    } catch {
      return undefined;
    }
  }

  private async packCount(gitdir: string): Promise<number> {
    try {
      return (await readdir(join(gitdir, 'objects', 'pack'))).filter((f) => f.endsWith('.pack')).length;
    } catch {
      return 0;
    }
  }

  private transport(): Promise<Transport> {
    return openTransport(this.remote, this.config, this.label, this.opts.onSshExchange);
  }

  /** Runs an isomorphic-git network operation, turning its errors into GitErrors. */
  private async guard<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw fetchError(e, {
        url: this.label,
        username: this.config.username ?? (this.remote as { username?: string }).username ?? 'git',
        hasPassword: Boolean(this.config.password),
        refNotFound: (cause) => this.refNotFound(cause),
      });
    }
  }

  // ---- objects ----

  /** Follows annotated tags to the commit they name. */
  private async peel(oid: string, gitdir: string): Promise<string> {
    for (let i = 0; i < 10; i++) {
      let obj;
      try {
        obj = await git.readObject({ fs, gitdir, oid, cache: this.cache });
      } catch (e) {
        throw new GitError('GIT_OBJECT_MISSING', `${this.what()} of ${this.label} names ${oid}, which is missing from the repository`, { url: this.label, oid }, { cause: e });
      }
      if (obj.type === 'commit') return oid;
      if (obj.type !== 'tag') break;
      oid = (obj.object as { object: string }).object;
    }
    throw new GitError('GIT_REF_NOT_FOUND', `${this.what()} of ${this.label} does not name a commit`, { url: this.label });
  }

  private async hasCommit(sha: string, gitdir: string): Promise<boolean> {
    try {
      await git.readCommit({ fs, gitdir, oid: sha, cache: this.cache });
      return true;
    } catch {
      return false;
    }
  }

  private async requireCommit(sha: string, gitdir: string): Promise<void> {
    if (!(await this.hasCommit(sha, gitdir))) {
      throw new GitError('GIT_REF_NOT_FOUND', `commit ${sha} is not in ${this.label}${this.remote.kind === 'local' ? '' : ' (not on any of its branches or tags)'}`, { url: this.label, commit: sha });
    }
  }

  private what(): string {
    const w = this.wanted;
    return w.kind === 'commit' ? `commit ${w.sha}` : `${w.kind} ${w.name}`;
  }

  private refNotFound(cause: unknown): GitError {
    return new GitError('GIT_REF_NOT_FOUND', `${this.what()} does not exist in ${this.label}`, { url: this.label, ...this.refData() }, cause ? { cause } : undefined);
  }

  private refData(): Record<string, string> {
    const w = this.wanted;
    return w.kind === 'commit' ? { commit: w.sha } : { [w.kind]: w.name };
  }

  private notARepository(): GitError {
    const dir = (this.remote as { dir: string }).dir;
    return new GitError('GIT_NOT_A_REPOSITORY', `${dir} is not a Git repository (no .git directory, and not a bare repository)`, { url: dir });
  }
}
