import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, chmodSync, symlinkSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';

/**
 * A real Git server for tests: `git http-backend` (CGI) behind a Node HTTP server on
 * 127.0.0.1 and an ephemeral port, serving the bare repositories under `root`. Pushing over
 * HTTP is enabled too. With `auth`, every request needs that HTTP basic user and password;
 * anything else gets 401 with WWW-Authenticate.
 */
export interface GitServerOptions {
  root: string;
  auth?: { username: string; password: string };
}

export interface GitServer {
  /** http://127.0.0.1:PORT/NAME */
  url(repoName: string): string;
  /** Requests served so far, by method and path (no query). */
  readonly requests: { method: string; path: string; status: number }[];
  /** Stops the server and kills any http-backend still running, by PID. */
  stop(): Promise<void>;
}

export const GIT = '/usr/bin/git';
const HTTP_BACKEND = execFileSync(GIT, ['--exec-path'], { encoding: 'utf8' }).trim() + '/git-http-backend';

export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  const children = new Set<ChildProcess>();
  const requests: GitServer['requests'] = [];
  const expected = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : undefined;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    const record = (status: number) => requests.push({ method: req.method ?? '', path: u.pathname, status });
    if (expected && req.headers.authorization !== expected) {
      record(401);
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      req.resume();
      return;
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: opts.root,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      // http.receivepack is otherwise on only for authenticated users (REMOTE_USER).
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
      REQUEST_METHOD: req.method,
      PATH_INFO: decodeURIComponent(u.pathname),
      QUERY_STRING: u.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      ...(opts.auth ? { REMOTE_USER: opts.auth.username } : {}),
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
    };
    const child = spawn(HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    child.on('error', () => children.delete(child));
    child.stderr.resume();
    req.pipe(child.stdin);
    child.stdin.on('error', () => {});

    // CGI output: headers, a blank line, then the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sepLen = end === crlf ? 4 : 2;
      headersDone = true;
      let status = 200;
      let statusMessage = 'OK';
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') {
          status = parseInt(value, 10);
          statusMessage = value.slice(String(status).length).trim() || statusMessage;
        } else headers[name] = value;
      }
      record(status);
      res.writeHead(status, statusMessage, headers);
      const rest = head.subarray(end + sepLen);
      if (rest.length) res.write(rest);
    });
    child.stdout.on('end', () => {
      if (!headersDone) {
        record(502);
        res.writeHead(502);
      }
      res.end();
    });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    requests,
    async stop() {
      for (const c of children) if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
      children.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Environment for the git CLI in tests: no user or system config, a fixed identity. */
export function gitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Ada Tester',
    GIT_AUTHOR_EMAIL: 'ada@example.test',
    GIT_COMMITTER_NAME: 'Ada Tester',
    GIT_COMMITTER_EMAIL: 'ada@example.test',
    GIT_TERMINAL_PROMPT: '0',
    ...extra,
  };
}

/** Runs the git CLI and returns its trimmed stdout; throws with stderr on failure. */
export function runGit(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    return execFileSync(GIT, args, { cwd, env: gitEnv(env), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`git ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Creates an empty bare repository (default branch main) at path. */
export function createBareRepo(path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  runGit(dirname(path), ['-c', 'init.defaultBranch=main', 'init', '--bare', '--quiet', path]);
  return path;
}

export type FileSpec = string | { content: string; mode?: number } | { symlink: string };

/**
 * A working repository to make commits in and push from, with the real git CLI.
 */
export class WorkRepo {
  constructor(readonly dir: string) {}

  static init(dir: string): WorkRepo {
    mkdirSync(dir, { recursive: true });
    runGit(dir, ['-c', 'init.defaultBranch=main', 'init', '--quiet']);
    return new WorkRepo(dir);
  }

  git(...args: string[]): string {
    return runGit(this.dir, args);
  }

  /** Writes files (relative paths); `null` deletes one. */
  write(files: Record<string, FileSpec | null>): this {
    for (const [rel, spec] of Object.entries(files)) {
      const p = join(this.dir, rel);
      rmSync(p, { force: true, recursive: true });
      if (spec === null) continue;
      mkdirSync(dirname(p), { recursive: true });
      if (typeof spec === 'string') writeFileSync(p, spec);
      else if ('symlink' in spec) symlinkSync(spec.symlink, p);
      else {
        writeFileSync(p, spec.content);
        if (spec.mode !== undefined) chmodSync(p, spec.mode);
      }
    }
    return this;
  }

  /** Stages everything and commits; returns the new commit's sha. */
  commit(message: string, files?: Record<string, FileSpec | null>): string {
    if (files) this.write(files);
    this.git('add', '-A');
    this.git('commit', '--quiet', '--allow-empty', '-m', message);
    return this.head();
  }

  head(): string {
    return this.git('rev-parse', 'HEAD');
  }

  /** Pushes refspecs (default main) to a remote path or URL. */
  push(remote: string, refspecs: string[] = ['main'], opts: { force?: boolean } = {}): void {
    this.git('push', '--quiet', ...(opts.force ? ['--force'] : []), remote, ...refspecs);
  }
}
