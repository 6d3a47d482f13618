import { checkNothingRuns } from '../api/plan.ts';
import type { Context } from '../api/context.ts';
import { StrataError } from '../errors.ts';
import type { Io } from './io.ts';

/**
 * Runs f; when it finds nothing deployed (NOTHING_DEPLOYED) and the models are at hand (ROOT),
 * first asks their machines whether they run the deployment anyway: then the state was lost,
 * and the answer is STATE_UNKNOWN_GENERATION with where it probably is, not "nothing deployed".
 */
export async function unlessStateLost<T>(f: () => T, root: string | undefined, ctx: Context, io: Io, quiet: boolean): Promise<T> {
  try {
    return f();
  } catch (e) {
    if (root !== undefined && e instanceof StrataError && e.code === 'NOTHING_DEPLOYED') {
      // Only lost state replaces the answer; models that cannot be read leave it as it is.
      await checkNothingRuns(root, ctx, noteTo(io, quiet)).catch((x: unknown) => {
        if (x instanceof StrataError && x.code === 'STATE_UNKNOWN_GENERATION') throw x;
      });
    }
    throw e;
  }
}

export function noteTo(io: Io, quiet: boolean): (message: string) => void {
  return (m) => {
    if (!quiet) io.err(`strata: note: ${m}\n`);
  };
}
