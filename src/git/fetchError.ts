import { StrataError } from '../errors.ts';
import { GitError } from './errors.ts';

export interface FetchContext {
  /** The repository as shown to people (no credentials). */
  url: string;
  username: string;
  hasPassword: boolean;
  /** The error for a branch, tag or commit the repository does not have. */
  refNotFound: (cause: unknown) => GitError;
}

/**
 * The GitError for a failed fetch or clone from isomorphic-git's error: authentication, a
 * missing ref, an HTTP status, or anything else with possible credentials removed.
 */
export function fetchError(e: unknown, ctx: FetchContext): StrataError {
  if (e instanceof StrataError) return e;
  const err = e as { code?: string; message?: string; data?: { statusCode?: number; statusMessage?: string } };
  const { url } = ctx;
  if (err.code === 'UserCanceledError' || (err.code === 'HttpError' && err.data?.statusCode === 401)) {
    // No cause attached: isomorphic-git's error objects may carry request headers.
    const why =
      err.code === 'UserCanceledError'
        ? `authentication failed for user ${JSON.stringify(ctx.username)}`
        : ctx.hasPassword
          ? 'authentication failed'
          : 'the repository requires authentication and no repository.password is configured';
    return new GitError('GIT_AUTH_FAILED', `cannot fetch ${url}: ${why}`, { url });
  }
  if (err.code === 'NotFoundError') return ctx.refNotFound(e);
  if (err.code === 'HttpError') {
    const status = `HTTP ${err.data?.statusCode ?? '?'} ${err.data?.statusMessage ?? ''}`.trim();
    return new GitError('GIT_FETCH_FAILED', `cannot fetch ${url}: the server answered ${status}`, { url, status: err.data?.statusCode });
  }
  return new GitError('GIT_FETCH_FAILED', `cannot fetch ${url}: ${scrub(String(err.message ?? e))}`, { url });
}

/** Removes anything that could be a credential from a low-level error message. */
function scrub(message: string): string {
  return message.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/\s@]*@/g, '$1');
}
