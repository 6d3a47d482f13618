import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { TargetError } from '../errors.ts';
import { sha256 } from '../lib/hash.ts';
import { SshTarget } from '../targets/ssh.ts';
import { GitError } from './errors.ts';
import { sshEnvironment } from '../targets/sshEnv.ts';

/** The largest pack fetched over the SSH bridge. */
const MAX_PACK_BYTES = 1024 ** 3;

/**
 * isomorphic-git speaks only smart HTTP. This is an isomorphic-git `http` client that answers
 * the two requests a fetch or clone makes by running `git-upload-pack PATH` over SSH:
 *
 *   GET  <bridge>/info/refs?service=git-upload-pack  → upload-pack with "0000" (flush) on stdin:
 *        it prints the ref advertisement and exits; we prefix the smart-HTTP service line.
 *   POST <bridge>/git-upload-pack                    → upload-pack with the request body on
 *        stdin; it prints the advertisement again (stateful protocol), which we strip, then
 *        the negotiation (ACK/NAK) and the pack, which we return.
 *
 * isomorphic-git sends wants, a flush, haves and "done" in one body without a flush between
 * the haves and "done", so a stateful upload-pack answers exactly as a stateless-rpc one does:
 * ACK lines for common haves as it reads them, the final ACK/NAK at "done", then the pack.
 *
 * The bridge URL (`https://ssh-bridge.invalid/<id>`) only makes isomorphic-git pick its HTTP
 * remote helper; nothing is ever sent to it. One SSH connection serves both requests (SshTarget
 * keeps it open); the host key is checked before authenticating (pinned key or known_hosts).
 */

export interface SshRemote {
  user: string;
  host: string;
  port: number;
  /** Repository path as upload-pack gets it: absolute, relative to home, or `~user/…`. */
  path: string;
}

export interface SshBridgeOptions {
  remote: SshRemote;
  /** How the repository is named in errors (a redacted URL). */
  label: string;
  /** Pinned public host key line; wins over knownHosts. */
  hostKey?: string;
  /** known_hosts file (default ~/.ssh/known_hosts). */
  knownHosts?: string;
  /** Private key file (else SshTarget's defaults: STRATA_SSH_KEY_FILE, STRATA_SSH_KEY). */
  identityFile?: string;
  /** The private key itself, from a secret held in an environment variable. */
  privateKey?: string;
  connectTimeoutMs?: number;
  /** Longest one upload-pack may run (default 10 minutes). */
  commandTimeoutMs?: number;
  /** Called after each exchange, for logs, metrics and tests. */
  onExchange?: (e: SshExchange) => void;
}

/** One request served over SSH. */
export interface SshExchange {
  method: 'GET' | 'POST';
  requestBytes: number;
  responseBytes: number;
  ms: number;
  /** POST only: how many "have" lines the request offered, and objects in the pack returned. */
  haves?: number;
  packObjects?: number;
}

export const BRIDGE_ORIGIN = 'https://ssh-bridge.invalid';
const ADVERTISEMENT_TYPE = 'application/x-git-upload-pack-advertisement';
const RESULT_TYPE = 'application/x-git-upload-pack-result';
const FLUSH = Buffer.from('0000');
const SERVICE_LINE = Buffer.from('001e# service=git-upload-pack\n0000');

export class SshBridge implements HttpClient {
  /** The URL to give isomorphic-git as the remote's url. */
  readonly url: string;
  private readonly target: SshTarget;

  constructor(private readonly opts: SshBridgeOptions) {
    const r = opts.remote;
    const id = sha256(`${r.user}@${r.host}:${r.port}${r.path}`).slice(0, 16);
    this.url = `${BRIDGE_ORIGIN}/${id}`;
    this.target = new SshTarget({
      machine: opts.label,
      host: r.host,
      port: r.port,
      user: r.user,
      hostKey: opts.hostKey,
      knownHosts: opts.knownHosts,
      identity: opts.identityFile,
      privateKey: opts.privateKey,
      connectTimeoutMs: opts.connectTimeoutMs,
      commandTimeoutMs: opts.commandTimeoutMs ?? 600_000,
      maxChannels: 2,
      // As for machines: the process-wide key and known_hosts when the repository names none.
      env: sshEnvironment(),
    });
  }

  /** isomorphic-git's HttpClient entry point (an arrow, so it survives being passed around). */
  request = async (req: GitHttpRequest): Promise<GitHttpResponse> => {
    const method = (req.method ?? 'GET').toUpperCase();
    if (!req.url.startsWith(`${this.url}/`)) return respond(req, 404, 'Not Found', 'text/plain', Buffer.from('not this bridge'));
    const rest = req.url.slice(this.url.length);
    if (method === 'GET' && rest === '/info/refs?service=git-upload-pack') {
      const started = Date.now();
      const out = await this.uploadPack(FLUSH);
      const body = Buffer.concat([SERVICE_LINE, out]);
      this.opts.onExchange?.({ method: 'GET', requestBytes: FLUSH.length, responseBytes: out.length, ms: Date.now() - started });
      return respond(req, 200, 'OK', ADVERTISEMENT_TYPE, body);
    }
    if (method === 'POST' && rest === '/git-upload-pack') {
      const started = Date.now();
      const input = await collect(req.body);
      const out = await this.uploadPack(input);
      const body = out.subarray(advertisementLength(out, this.opts.label));
      this.opts.onExchange?.({
        method: 'POST',
        requestBytes: input.length,
        responseBytes: body.length,
        ms: Date.now() - started,
        haves: countHaves(input),
        packObjects: packObjectCount(body),
      });
      return respond(req, 200, 'OK', RESULT_TYPE, body);
    }
    // Pushing is not something a controller does.
    return respond(req, 403, 'Forbidden', 'text/plain', Buffer.from('only git-upload-pack is served over the SSH bridge'));
  };

  /** Closes the SSH connection; the next request opens a new one. */
  close(): Promise<void> {
    return this.target.close();
  }

  private async uploadPack(input: Buffer): Promise<Buffer> {
    const o = this.opts;
    let result;
    try {
      // A pack is held in memory (it is answered as one HTTP body): bounded, as every answer of a machine.
      result = await this.target.run(['git-upload-pack', o.remote.path], { input, verb: 'git-upload-pack', maxStdoutBytes: MAX_PACK_BYTES });
    } catch (e) {
      throw this.translate(e);
    }
    if (result.code !== 0) {
      const why = result.stderr.trim().split('\n').slice(-3).join('; ') || `exit status ${result.code}`;
      throw new GitError('GIT_FETCH_FAILED', `cannot fetch ${o.label}: git-upload-pack on ${o.remote.host} failed: ${why}`, { url: o.label, exitCode: result.code });
    }
    return result.stdoutBytes;
  }

  private translate(e: unknown): GitError {
    const o = this.opts;
    const where = `${o.remote.host}:${o.remote.port}`;
    const data = { url: o.label, host: o.remote.host, port: o.remote.port };
    if (!(e instanceof TargetError)) return new GitError('GIT_FETCH_FAILED', `cannot fetch ${o.label}: ${(e as Error).message}`, data, { cause: e });
    switch (e.code) {
      case 'HOST_KEY_MISMATCH':
        return new GitError(
          'GIT_HOST_KEY_MISMATCH',
          `cannot fetch ${o.label}: the host key of ${where} does not match ${o.hostKey ? 'the pinned repository.hostKey' : `its entry in ${o.knownHosts ?? '~/.ssh/known_hosts'}`}; refusing to connect`,
          data,
          { cause: e },
        );
      case 'HOST_KEY_UNKNOWN':
        return new GitError('GIT_HOST_KEY_UNKNOWN', `cannot fetch ${o.label}: no host key is known for ${where}; set repository.hostKey or repository.knownHosts`, data, { cause: e });
      case 'AUTH_FAILED':
        return new GitError('GIT_AUTH_FAILED', `cannot fetch ${o.label}: SSH authentication as ${o.remote.user} failed`, data, { cause: e });
      case 'IDENTITY_UNREADABLE':
        return new GitError('SECRET_MISSING', `cannot fetch ${o.label}: cannot read the SSH key file ${o.identityFile}: it ${typeof e.data.reason === 'string' ? e.data.reason : 'cannot be read'}`, data, { cause: e });
      case 'NO_IDENTITY':
        return new GitError('SECRET_MISSING', `cannot fetch ${o.label}: no SSH key; set repository.sshKey`, data, { cause: e });
      default:
        return new GitError('GIT_FETCH_FAILED', `cannot fetch ${o.label}: ${e.message}`, data, { cause: e });
    }
  }
}

/**
 * Length of the ref advertisement a stateful upload-pack prints first: pkt-lines up to and
 * including the first flush ("0000").
 */
export function advertisementLength(out: Buffer, label = 'the repository'): number {
  let at = 0;
  while (at + 4 <= out.length) {
    const len = pktLength(out, at);
    if (len === undefined || (len > 0 && len < 4)) break;
    if (len === 0) return at + 4;
    at += len;
  }
  throw new GitError('GIT_FETCH_FAILED', `cannot fetch ${label}: git-upload-pack's answer does not start with a ref advertisement`, { url: label });
}

function pktLength(buf: Buffer, at: number): number | undefined {
  const hex = buf.subarray(at, at + 4).toString('latin1');
  return /^[0-9a-fA-F]{4}$/.test(hex) ? parseInt(hex, 16) : undefined;
}

/** "have" lines in an upload-pack request. */
export function countHaves(request: Buffer): number {
  let n = 0;
  for (const line of pktLines(request)) if (line.subarray(0, 5).toString('latin1') === 'have ') n++;
  return n;
}

/** The object count in the header of the pack an upload-pack result carries (side-band or not). */
export function packObjectCount(result: Buffer): number | undefined {
  // With side-band, the pack is split over band-1 packets (the 12-byte header may be too).
  let band1 = Buffer.alloc(0);
  for (const line of pktLines(result)) {
    if (line[0] !== 1) continue;
    band1 = Buffer.concat([band1, line.subarray(1)]);
    if (band1.length >= 12) return band1.subarray(0, 4).toString('latin1') === 'PACK' ? band1.readUInt32BE(8) : undefined;
  }
  const raw = result.indexOf('PACK');
  return raw >= 0 && raw + 12 <= result.length ? result.readUInt32BE(raw + 8) : undefined;
}

/** Payloads of the pkt-lines at the start of buf (flushes skipped), until one does not parse. */
function* pktLines(buf: Buffer): Generator<Buffer> {
  let at = 0;
  while (at + 4 <= buf.length) {
    const len = pktLength(buf, at);
    if (len === undefined || (len > 0 && len < 4) || at + len > buf.length) return;
    if (len > 0) yield buf.subarray(at + 4, at + len);
    at += len === 0 ? 4 : len;
  }
}

async function collect(body: GitHttpRequest['body'] | Iterable<Uint8Array> | undefined): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  return Buffer.concat(chunks);
}

function respond(req: GitHttpRequest, statusCode: number, statusMessage: string, contentType: string, body: Buffer): GitHttpResponse {
  return {
    url: req.url,
    method: req.method,
    statusCode,
    statusMessage,
    headers: { 'content-type': contentType, 'content-length': String(body.length) },
    body: (async function* () {
      yield new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    })(),
  };
}
