import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GitError } from './errors.ts';

/** Where a repository is and how to reach it. */
export type RepoUrl =
  /** `url` never holds credentials; any given in the URL are moved to username / password. */
  | { kind: 'http'; url: string; username?: string; password?: string }
  /** `path` is given to git-upload-pack as is: absolute, relative to the user's home, or `~user/…`. */
  | { kind: 'ssh'; user: string; host: string; port: number; path: string }
  /** An absolute directory: a working tree with .git, or a bare repository. */
  | { kind: 'local'; dir: string };

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$/;
const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Parses a repository URL: `https://…` / `http://…`, `ssh://[user@]host[:port]/path`,
 * scp-like `[user@]host:path` (user default `git`), `file:///abs`, or a plain path (absolute,
 * or relative to `cwd`). Like git, a colon before the first slash makes a string scp-like.
 * Anything else throws GitError GIT_URL_INVALID; the message shows the URL redacted.
 */
export function parseRepoUrl(input: string, cwd: string = process.cwd()): RepoUrl {
  const url = input.trim();
  if (url === '') throw invalid(input, 'it is empty');
  if (CONTROL.test(url)) throw invalid(input, 'it contains control characters');
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return parseHttp(input, url);
  if (scheme === 'ssh' || scheme === 'git+ssh' || scheme === 'ssh+git') return parseSshUrl(input, url);
  if (scheme === 'file') {
    let dir: string;
    try {
      dir = fileURLToPath(url);
    } catch {
      throw invalid(input, 'a file: URL must name a local absolute path (file:///path)');
    }
    return { kind: 'local', dir: stripTrailingSlash(dir) };
  }
  if (scheme !== undefined) throw invalid(input, `the scheme "${scheme}://" is not supported (use https://, ssh://, scp-like user@host:path, file:// or a directory)`);
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  if (colon > 0 && (slash < 0 || colon < slash || url.startsWith('['))) return parseScpLike(input, url);
  return { kind: 'local', dir: stripTrailingSlash(resolvePath(cwd, url)) };
}

/**
 * Whether a repository URL names a directory on this host: the one rule, parseRepoUrl's
 * (`file://`, an absolute path, or a relative one such as a bare `repo`). A URL parseRepoUrl
 * refuses names no directory here.
 */
export function isLocalUrl(input: string): boolean {
  try {
    return parseRepoUrl(input).kind === 'local';
  } catch (e) {
    if (e instanceof GitError) return false;
    throw e;
  }
}

function parseHttp(input: string, url: string): RepoUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(input, 'it is not a valid URL');
  }
  if (!u.hostname) throw invalid(input, 'it has no host');
  if (u.search || u.hash) throw invalid(input, 'a repository URL cannot have a query (?…) or fragment (#…)');
  const username = u.username ? safeDecode(u.username) : undefined;
  const password = u.password ? safeDecode(u.password) : undefined;
  u.username = '';
  u.password = '';
  const clean = u.toString().replace(/\/+$/, '');
  return { kind: 'http', url: clean, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
}

function parseSshUrl(input: string, url: string): RepoUrl {
  const m = /^[^:]+:\/\/(?:([^@/]*)@)?(\[[^\]/]*\]|[^:/]*)(?::(\d*))?(\/.*)?$/.exec(url);
  if (!m) throw invalid(input, 'expected ssh://[user@]host[:port]/path');
  const [, userinfo, hostRaw = '', portRaw, pathRaw] = m;
  const user = checkUser(input, userinfo);
  const host = checkHost(input, hostRaw);
  const port = portRaw === undefined || portRaw === '' ? 22 : Number(portRaw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(input, `port ${portRaw} is out of range`);
  if (!pathRaw || pathRaw === '/') throw invalid(input, 'it names no repository path');
  // As git does: ssh://host/~/repo and ssh://host/~user/repo are relative to a home directory.
  const path = pathRaw.startsWith('/~') ? pathRaw.slice(1) : pathRaw;
  return { kind: 'ssh', user, host, port, path };
}

function parseScpLike(input: string, url: string): RepoUrl {
  const m = /^(?:([^@/:]*)@)?(\[[^\]/]*\]|[^:/]*):(.*)$/.exec(url);
  if (!m) throw invalid(input, 'expected user@host:path');
  const [, userinfo, hostRaw = '', path = ''] = m;
  const user = checkUser(input, userinfo);
  const host = checkHost(input, hostRaw);
  if (path === '') throw invalid(input, 'it names no repository path');
  return { kind: 'ssh', user, host, port: 22, path };
}

function checkUser(input: string, userinfo: string | undefined): string {
  if (userinfo === undefined) return 'git';
  if (userinfo.includes(':')) throw invalid(input, 'passwords in SSH URLs are not supported; use sshKey');
  if (!USER.test(userinfo)) throw invalid(input, 'the user name is empty or has characters other than letters, digits, ".", "_" and "-"');
  return userinfo;
}

function checkHost(input: string, host: string): string {
  if (!HOST.test(host)) throw invalid(input, `"${host}" is not a valid host name`);
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

function stripTrailingSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function invalid(input: string, why: string): GitError {
  const shown = redactUrl(input);
  return new GitError('GIT_URL_INVALID', `invalid repository URL ${JSON.stringify(shown)}: ${why}`, { url: shown });
}

/**
 * The URL with any credentials removed, for messages and records: the whole `user:pass@` of an
 * HTTP(S) URL (a token may stand in the user name), the password of any other `scheme://`
 * URL. Works on strings that do not parse, too.
 */
export function redactUrl(url: string): string {
  return url.replace(/^(\s*[A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/, (_all, scheme: string, userinfo: string) => {
    if (/^\s*https?:\/\/$/i.test(scheme)) return scheme;
    return `${scheme}${userinfo.split(':')[0]}@`;
  });
}

/** How a parsed repository is shown to people; never holds credentials. */
export function describeRepo(u: RepoUrl): string {
  switch (u.kind) {
    case 'http':
      return u.url;
    case 'local':
      return u.dir;
    case 'ssh': {
      const host = u.host.includes(':') ? `[${u.host}]` : u.host;
      if (u.path.startsWith('/')) return `ssh://${u.user}@${host}${u.port === 22 ? '' : `:${u.port}`}${u.path}`;
      return u.port === 22 ? `${u.user}@${host}:${u.path}` : `ssh://${u.user}@${host}:${u.port}/${u.path}`;
    }
  }
}

/** A short name for labels: the last two segments of the path without ".git", e.g. `org/repo`. */
export function repoName(u: RepoUrl): string {
  const path = u.kind === 'http' ? new URL(u.url).pathname : u.kind === 'ssh' ? u.path : u.dir;
  const segments = path
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .split('/')
    .filter((s) => s !== '' && s !== '~');
  const name = segments.slice(-2).join('/');
  return name || (u.kind === 'ssh' ? u.host : u.kind === 'http' ? new URL(u.url).host : u.dir);
}
