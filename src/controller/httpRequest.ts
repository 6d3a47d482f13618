import type { IncomingMessage, ServerResponse } from 'node:http';
import { StrataError } from '../errors.ts';
import { classOf } from '../errors/codes.ts';
import { formatDuration } from '../lib/backoff.ts';

/**
 * What the controller reads from a request, parsed as hostile input: the request target, a
 * bounded body, a JSON object. Each refusal is an HttpError carrying the status to answer.
 */
export class HttpError extends StrataError {
  /** The status answered, the code's in the error table (src/errors/codes.ts). */
  get status(): number {
    return classOf(this.code).http;
  }

  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** The client went away or was already answered (a time-out): nothing more to answer. */
export class RequestAbandoned extends Error {}

const badRequest = (message: string) => new HttpError('BAD_REQUEST', message);
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The path of a request target and its decoded segments. Only the origin form (`/a/b?q`) and
 * the absolute form (`http://host/a/b`) name a resource; the query is ignored. A segment that
 * is not valid percent-encoded UTF-8, or decodes to a control character, is refused. The path
 * is not normalised: `/api/../healthz` names no route, and an empty segment (`//a:b/x`, which
 * a URL parser would take for a host) is refused.
 */
export function parseRequestTarget(target: string | undefined): { path: string; parts: string[] } {
  let path: string;
  if (target?.startsWith('/')) path = target.replace(/[?#].*$/s, '');
  else if (target && /^https?:\/\//i.test(target)) {
    try {
      path = new URL(target).pathname;
    } catch {
      throw badRequest('the request target is not a valid URL');
    }
  } else throw badRequest('the request target must be a path such as /api/deployments');
  const raw = path.split('/').slice(1);
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop(); // a trailing slash
  if (raw.length > 1 && raw.includes('')) throw badRequest(`the path "${show(path)}" holds an empty segment`);
  const parts = raw.map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw badRequest(`the path segment "${show(segment)}" is not valid percent-encoded UTF-8`);
    }
    if (CONTROL.test(decoded)) throw badRequest(`the path segment "${show(segment)}" holds a control character`);
    return decoded;
  });
  return { path, parts };
}

/** A piece of the request, short enough to echo in an answer. */
export function show(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

export const tooLarge = (limit: number) => new HttpError('BODY_TOO_LARGE', `the request body is over the limit of ${limit} bytes`);

/**
 * Reads a request body of at most `limit` bytes. A declared Content-Length over it is refused
 * before a byte is read (and before `100 Continue` is sent, so a client that asked never sends
 * it); a body that grows over it, or pauses longer than `idleMs`, is refused as soon as that
 * happens. After a refusal the rest is read and dropped, so the answer can be delivered and the
 * connection closed cleanly (src/controller/httpClose.ts). `abandoned` fires when the server
 * answered the request itself (a time-out): the body is then never handed on.
 */
export function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  opts: { limit: number; idleMs: number; expectContinue: boolean; abandoned: AbortSignal },
): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > opts.limit) return Promise.reject(tooLarge(opts.limit));
  if (opts.abandoned.aborted || req.destroyed) return Promise.reject(new RequestAbandoned());
  if (opts.expectContinue) res.writeContinue();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => fail(new HttpError('REQUEST_TIMEOUT', `the request body stalled: nothing arrived for ${formatDuration(opts.idleMs)}`)), opts.idleMs);
    const cleanup = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      opts.abandoned.removeEventListener('abort', onAbandoned);
    };
    const fail = (e: Error) => {
      cleanup();
      req.resume(); // drop the rest
      reject(e);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > opts.limit) return fail(tooLarge(opts.limit));
      chunks.push(c);
      timer.refresh();
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onClose = () => fail(new RequestAbandoned());
    const onAbandoned = () => fail(new RequestAbandoned());
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    opts.abandoned.addEventListener('abort', onAbandoned);
  });
}

/**
 * A JSON object body: empty (or blank) is `{}`; anything else must be UTF-8 JSON whose top
 * level is an object holding only `allowed` fields.
 */
export function parseJsonObject(body: Buffer, allowed: readonly string[], example: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw badRequest('the body is not UTF-8');
  }
  if (text.trim() === '') return Object.create(null) as Record<string, unknown>;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badRequest(`the body is not valid JSON (${show((e as Error).message, 120)})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(`the body must be a JSON object such as ${example}; got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw badRequest(`unknown field "${show(key)}" in the body (expected ${allowed.map((k) => `"${k}"`).join(', ') || 'none'})`);
  }
  return value as Record<string, unknown>;
}

/** The body of `POST /api/deployments/NAME/rollback`: `{}` (the previous generation) or `{"to": N}`. */
export function parseRollbackBody(body: Buffer): { to?: number } {
  const o = parseJsonObject(body, ['to'], '{"to": 12} or {}');
  const to = o.to;
  if (to === undefined) return {};
  if (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 1) {
    throw badRequest(`"to" must be a generation number (a whole number from 1); got ${show(JSON.stringify(to) ?? String(to))}`);
  }
  return { to };
}

/** The body of `POST /api/deployments/NAME/machines/MACHINE/abandon`: `{"reason": TEXT, "by": TEXT}` (`by` optional). */
export function parseAbandonBody(body: Buffer): { reason: string; by?: string } {
  const o = parseJsonObject(body, ['reason', 'by'], '{"reason": "disk died", "by": "alice"}');
  const { reason, by } = o;
  if (typeof reason !== 'string' || reason.trim() === '' || reason.length > 1000) throw badRequest('"reason" must be a non-empty text of at most 1000 characters: why the machine is abandoned (it goes into the audit record)');
  if (by !== undefined && (typeof by !== 'string' || by.length > 200)) throw badRequest('"by" must be a text of at most 200 characters naming who abandons the machine');
  return { reason, ...(by !== undefined ? { by } : {}) };
}

/** The body of `POST /api/deployments/NAME/adopt`: `{}` or any of `{"generation": N, "manifestHash": HEX, "force": BOOL, "partial": BOOL}`. */
export function parseAdoptBody(body: Buffer): { generation?: number; manifestHash?: string; force?: boolean; partial?: boolean } {
  const o = parseJsonObject(body, ['generation', 'manifestHash', 'force', 'partial'], '{"generation": 12} or {}');
  const { generation, manifestHash, force, partial } = o;
  if (generation !== undefined && (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 1)) {
    throw badRequest(`"generation" must be a generation number (a whole number from 1); got ${show(JSON.stringify(generation) ?? String(generation))}`);
  }
  if (manifestHash !== undefined && (typeof manifestHash !== 'string' || !/^[0-9a-f]{4,64}$/.test(manifestHash))) {
    throw badRequest('"manifestHash" must be a manifest hash in lowercase hex, or a prefix of at least 4 digits of one');
  }
  for (const [k, v] of [['force', force], ['partial', partial]] as const) if (v !== undefined && typeof v !== 'boolean') throw badRequest(`"${k}" must be true or false`);
  return {
    ...(generation !== undefined ? { generation: generation as number } : {}),
    ...(manifestHash !== undefined ? { manifestHash: manifestHash as string } : {}),
    ...(force !== undefined ? { force: force as boolean } : {}),
    ...(partial !== undefined ? { partial: partial as boolean } : {}),
  };
}
