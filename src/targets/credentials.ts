import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { isInside } from '../lib/paths.ts';
import { isSymlink } from '../lib/symlink.ts';

/**
 * What one deployment may use on the controller host to reach its machines. The controller
 * builds one per deployment from its configuration (deployments[].ssh, localMachines); the
 * CLI passes none, and a model may then name any file its operator can read.
 *
 * Under the controller, the repository's authors are not the controller's operator: a model's
 * `ssh.identity` or `ssh.knownHosts` is used only when it lies inside one of `allowedFiles`
 * (real paths, symlinks resolved), and a file elsewhere is refused before anything looks at
 * it, so a refusal says nothing about whether that file exists or what it holds.
 */
export interface CredentialPolicy {
  /** The deployment's name, for messages. */
  deployment: string;
  /** Directories whose files the deployment's models may name as ssh.identity / ssh.knownHosts. */
  allowedFiles: readonly string[];
  /** The deployment's own private key (from the controller configuration), read when first needed. */
  identity?: () => Buffer | string;
  /** The deployment's own known_hosts file (controller configuration). */
  knownHosts?: string;
  /** Whether `target: local` machines (which run the repository's commands on this host) are allowed. */
  localMachines: boolean;
}

/** `~/x` is the controller user's home; other paths are used as given (relative to the working directory). */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/**
 * The real path of a model-named file when the policy lets the deployment use it, else
 * undefined. A path outside every allowed directory as written is refused without touching
 * the filesystem; one inside is then resolved, and refused when a symlink leads it out (or
 * dangles). A file that does not exist inside an allowed directory is returned as written:
 * reading it then says so, which tells the authors nothing about the rest of the host.
 */
export function allowedFile(path: string, allowedDirs: readonly string[]): string | undefined {
  const written = resolve(expandHome(path));
  const dirs = allowedDirs.map((d) => resolve(expandHome(d)));
  if (!dirs.some((d) => isInside(d, written))) return undefined;
  if (isSymlink(written) && !exists(written)) return undefined;
  const real = realPathSoFar(written);
  const realDirs = dirs.map((d) => realPathSoFar(d));
  return realDirs.some((d) => isInside(d, real)) ? real : undefined;
}

/**
 * The real path of `path`, or for one that does not exist, the real path of its deepest
 * existing ancestor with the rest appended (so a symlinked directory on the way still counts).
 */
function realPathSoFar(path: string): string {
  const rest: string[] = [];
  let p = path;
  for (;;) {
    try {
      return join(realpathSync(p), ...rest);
    } catch {
      if (p === '/') return path;
      rest.unshift(basename(p));
      p = dirname(p);
    }
  }
}

function exists(path: string): boolean {
  try {
    realpathSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a model-named file is refused, the same words whatever the file is (or whether it is):
 * `field` is "ssh.identity" or "ssh.knownHosts".
 */
export function refusedFileMessage(field: 'ssh.identity' | 'ssh.knownHosts', policy: Pick<CredentialPolicy, 'deployment' | 'allowedFiles'>): string {
  const allowed = policy.allowedFiles.length === 0 ? 'it allows none' : `it allows only files inside ${policy.allowedFiles.join(', ')}`;
  const instead = field === 'ssh.identity' ? 'deployments[].ssh.identity' : 'deployments[].ssh.knownHosts';
  return (
    `${field} names a file on the controller host that deployment ${policy.deployment} may not use: under the controller, a model may name only ` +
    `files inside the directories its controller configuration lists in deployments[].ssh.allowedFiles, and ${allowed}. ` +
    `Give the deployment its ${field === 'ssh.identity' ? 'key' : 'known_hosts'} in the controller configuration instead (${instead}).`
  );
}

/** Why a local machine is refused under the controller. */
export function refusedLocalMessage(deployment: string): string {
  return (
    `a local machine runs this repository's commands on the controller host, as the controller's user (which can read every deployment's keys); ` +
    `deployment ${deployment} may have one only where the controller configuration sets localMachines: true for it`
  );
}
