import type { SecretRef } from '../lib/secretRef.ts';

/**
 * One repository to read deployments from, as git takes it: the repository part of a
 * deployment's configuration (docs/controller.md), whose schema lives with the controller's.
 */
export interface GitRepositoryConfig {
  /** https://…, git@host:path, ssh://user@host[:port]/path, or a local directory. */
  url: string;
  /** Branch to follow (default main), unless a tag or a commit is given. */
  branch?: string;
  tag?: string;
  /** A full 40-character commit sha. */
  commit?: string;
  /** How often to fetch a remote, in ms (the caller's business: git only passes it on). */
  interval?: number;
  /** HTTP(S) user name (default "git" when a password is given). */
  username?: string;
  /** HTTP(S) password or token. */
  password?: SecretRef;
  /** Private key for SSH remotes. */
  sshKey?: SecretRef;
  /** Pinned host key of an SSH remote. */
  hostKey?: string;
  /** known_hosts file for an SSH remote. */
  knownHosts?: string;
}
