import type { Tree } from '../source/tree.ts';

/** A commit as history shows it. */
export interface CommitInfo {
  sha: string;
  author: { name: string; email: string };
  message: string;
  /** ISO 8601. */
  time: string;
}

export interface SyncResult {
  /** The commit the configured branch, tag or pin resolves to now. */
  commit: string;
  ref: string;
  /** The commit the previous sync resolved to, if any. */
  previous?: string;
  /** The branch moved to a commit that does not descend from the previous one (a force push). */
  rewritten: boolean;
}

/** Where a deployment's models come from; src/git implements it for Git repositories. */
export interface DeploymentSource {
  /** The repository, with any credentials removed. */
  readonly label: string;
  sync(): Promise<SyncResult>;
  tree(commit: string): Tree;
  commitInfo(sha: string): Promise<CommitInfo>;
  /** Calls onChange when the repository's refs change (local repositories); returns a stop function. */
  watch?(onChange: () => void): () => void;
}
