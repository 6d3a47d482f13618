import { join } from 'node:path';
import { GitSource } from '../git/source.ts';
import type { DeploymentConfig } from './config.ts';
import type { DeploymentSource } from './source.ts';

/** The Git source of a configured deployment; remotes are cloned under stateDir/git/NAME. */
export function sourceFor(d: DeploymentConfig, stateDir: string): DeploymentSource {
  return new GitSource(d.repository, join(stateDir, 'git', d.name));
}
