import { join } from 'node:path';
import { GitSource } from '../git/source.ts';
import { pathName } from '../state/stateNames.ts';
import type { DeploymentConfig } from './config.ts';
import type { RevisionSource } from './revisionSource.ts';

/**
 * The Git source of a configured deployment; remotes are cloned under stateDir/git/NAME. A
 * short watch debounce is safe: a reconcile re-reads the branch, and the queue runs a
 * deployment again if it changed while being reconciled.
 */
export function gitSourceFor(d: DeploymentConfig, stateDir: string): RevisionSource {
  return new GitSource(d.repository, join(stateDir, 'git', pathName('deployment', d.name)), { watchDebounceMs: 20 });
}
