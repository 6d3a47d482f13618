import { StrataError } from '../errors.ts';

/**
 * A failure reading a Git repository: a bad URL, an unreachable or refusing remote, a ref that
 * does not exist. Messages name the repository by its redacted URL and never carry secrets.
 *
 * Codes: GIT_URL_INVALID, GIT_FETCH_FAILED, GIT_AUTH_FAILED, GIT_REF_NOT_FOUND,
 * GIT_HOST_KEY_MISMATCH, GIT_HOST_KEY_UNKNOWN, GIT_NOT_A_REPOSITORY, GIT_OBJECT_MISSING.
 * (A credential that cannot be read is SECRET_MISSING, src/git/secrets.ts.)
 */
export class GitError extends StrataError {}
