import path from 'node:path';
import { TestnetError } from '../errors.ts';
import { BOUND_PATHS, hostLayout } from './layout.ts';
import type { TestnetHost } from './types.ts';

/**
 * The real-filesystem path of `pathInsideHost` as the host sees it. Only the paths bound
 * per host are mapped (`/var/lib/strata/...`, `/root/...`, `/tmp/...`); anything else is shared
 * with the real machine or not the host's own, and throws.
 */
export function hostPath(host: TestnetHost, pathInsideHost: string): string {
  if (!path.posix.isAbsolute(pathInsideHost)) {
    throw new TestnetError('TESTNET_PATH_NOT_MAPPED', `hostPath needs an absolute path, got ${JSON.stringify(pathInsideHost)}`, { path: pathInsideHost });
  }
  const p = path.posix.normalize(pathInsideHost).replace(/(.)\/+$/, '$1');
  for (const bound of BOUND_PATHS) {
    if (p === bound || p.startsWith(`${bound}/`)) {
      return path.join(hostLayout(host.dir).fs, p);
    }
  }
  throw new TestnetError(
    'TESTNET_PATH_NOT_MAPPED',
    `${pathInsideHost} is not private to test host ${host.name}; only paths under ${BOUND_PATHS.join(', ')} are`,
    { path: pathInsideHost, host: host.name },
  );
}
