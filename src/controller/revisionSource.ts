import type { CommitInfo, SyncResult } from '../git/source.ts';
import type { Tree } from '../tree/tree.ts';

export type { CommitInfo, SyncResult };

/** Where a deployment's revisions (commits, and the models at each) come from; src/git's GitSource is the one in use (src/controller/gitSource.ts). */
export interface RevisionSource {
  /** The repository, with any credentials removed. */
  readonly label: string;
  sync(): Promise<SyncResult>;
  tree(commit: string): Tree;
  commitInfo(sha: string): Promise<CommitInfo>;
  /** Calls onChange when the repository's refs change (local repositories); returns a stop function. */
  watch?(onChange: () => void): () => void;
}
