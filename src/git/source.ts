import * as fs from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { writeFileAtomic } from '../lib/atomicFile.ts';
import { GitError } from './errors.ts';
import type { GitRepositoryConfig } from './options.ts';
import { GitTree } from './gitTree.ts';
import { findGitdir } from './localRepo.ts';
import type { SshExchange } from './sshTransport.ts';
import { peelToCommit, requireCommit, type ObjectSource } from './objects.ts';
import { syncMirror } from './remoteMirror.ts';
import { openTransport } from './transport.ts';
import { describeRepo, parseRepoUrl, repoName, type RepoUrl } from './url.ts';
import { watchRefs } from './watch.ts';
import { refNotFound, wantedOf, wantedRef, type Wanted } from './wanted.ts';

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
    this.wanted = wantedOf(config);
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
    const ref = wantedRef(this.wanted);
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
    const objects = this.objects();
    const w = this.wanted;
    if (w.kind === 'commit') {
      await requireCommit(objects, w.sha);
      return w.sha;
    }
    let oid: string;
    try {
      oid = await git.resolveRef({ fs, gitdir: objects.gitdir, ref: wantedRef(w) });
    } catch (e) {
      throw refNotFound(w, this.label, e);
    }
    return peelToCommit(objects, oid);
  }

  // ---- remotes ----

  private async fetchRemote(): Promise<string> {
    const transport = await openTransport(this.remote, this.config, this.label, this.opts.onSshExchange);
    try {
      return await syncMirror(
        {
          ...this.objects(),
          cacheDir: this.cacheDir,
          username: this.config.username ?? (this.remote as { username?: string }).username ?? 'git',
          hasPassword: Boolean(this.config.password),
          maxPacks: this.opts.maxPacks ?? 64,
        },
        transport,
      );
    } finally {
      await transport.close();
    }
  }

  private objects(): ObjectSource {
    const missingHint = this.remote.kind === 'local' ? '' : ' (not on any of its branches or tags)';
    return { gitdir: this.gitdir, cache: this.cache, label: this.label, wanted: this.wanted, missingHint };
  }

  private notARepository(): GitError {
    const dir = (this.remote as { dir: string }).dir;
    return new GitError('GIT_NOT_A_REPOSITORY', `${dir} is not a Git repository (no .git directory, and not a bare repository)`, { url: dir });
  }
}
