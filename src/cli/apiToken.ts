import { UsageError } from '../errors.ts';
import { readSecret } from '../git/secrets.ts';

/**
 * The bearer token a command that asks a controller sends: from `--token-file FILE`, else
 * STRATA_API_TOKEN, read by the one secret rule (src/git/secrets.ts); neither given is a usage error.
 */
export function apiToken(file: string | undefined): string {
  if (file === undefined && process.env.STRATA_API_TOKEN === undefined) throw new UsageError('the controller needs a token: --token-file FILE or STRATA_API_TOKEN');
  return readSecret(file !== undefined ? { file } : { env: 'STRATA_API_TOKEN' }, file !== undefined ? '--token-file' : 'the controller\'s API token');
}
