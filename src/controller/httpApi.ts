import { timingSafeEqual } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { deploymentHistory } from '../api/history.ts';
import { StrataError } from '../errors.ts';
import { classOf } from '../errors/codes.ts';
import { httpLimits, type HttpLimits } from './config.ts';
import type { Controller } from './controller.ts';
import { closeAfter, lingeringClose, rawAnswer } from './httpClose.ts';
import { HttpError, parseAbandonBody, parseAdoptBody, parseRequestTarget, parseRollbackBody, readBody, RequestAbandoned, show } from './httpRequest.ts';

/**
 * The controller's HTTP face: health, readiness, Prometheus metrics, the deployments API
 * (mutations behind a bearer token) and webhooks. Documented in docs/controller.md.
 *
 * Every request is hostile input. Whatever it holds, it gets a 4xx answer and never ends the
 * process or a transition in flight: the target is parsed and decoded inside the request's
 * error boundary, headers and bodies are bounded in time and size (`http` in the controller
 * configuration), and requests Node's parser refuses are answered by `clientError`.
 */

type RouteName = 'healthz' | 'readyz' | 'metrics' | 'webhook' | 'list' | 'get' | 'history' | 'sync' | 'suspend' | 'resume' | 'rollback' | 'adopt' | 'abandon';

/** Path patterns (`:name` and `:machine` are any segment) and the one method each accepts. */
const ROUTES: { pattern: string[]; method: 'GET' | 'POST'; route: RouteName }[] = [
  { pattern: ['healthz'], method: 'GET', route: 'healthz' },
  { pattern: ['readyz'], method: 'GET', route: 'readyz' },
  { pattern: ['metrics'], method: 'GET', route: 'metrics' },
  { pattern: ['webhooks', ':name'], method: 'POST', route: 'webhook' },
  { pattern: ['api', 'deployments'], method: 'GET', route: 'list' },
  { pattern: ['api', 'deployments', ':name'], method: 'GET', route: 'get' },
  { pattern: ['api', 'deployments', ':name', 'history'], method: 'GET', route: 'history' },
  ...(['sync', 'suspend', 'resume', 'rollback', 'adopt'] as const).map((a) => ({ pattern: ['api', 'deployments', ':name', a], method: 'POST' as const, route: a })),
  { pattern: ['api', 'deployments', ':name', 'machines', ':machine', 'abandon'], method: 'POST', route: 'abandon' },
];

function matchRoute(parts: string[]): { routes: typeof ROUTES; name?: string; machine?: string } {
  const routes = ROUTES.filter((r) => r.pattern.length === parts.length && r.pattern.every((p, i) => p.startsWith(':') || p === parts[i]));
  const at = routes[0]?.pattern.indexOf(':name') ?? -1;
  const machineAt = routes[0]?.pattern.indexOf(':machine') ?? -1;
  return { routes, ...(at >= 0 ? { name: parts[at] } : {}), ...(machineAt >= 0 ? { machine: parts[machineAt] } : {}) };
}

export function createApiServer(controller: Controller, opts: { log: Logger; apiToken?: string; limits?: HttpLimits }): Server {
  const limits = opts.limits ?? httpLimits(controller.config.http);
  const log = opts.log;
  /** The request in flight on each connection, so a time-out can abandon it. */
  const inFlight = new WeakMap<Duplex, { res: ServerResponse; abandon: AbortController }>();
  /** Connections already answered by clientError (Node's parser may report the same one again). */
  const answered = new WeakSet<Duplex>();

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = `${JSON.stringify(body, null, 2)}\n`;
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.end(text);
  };
  const authorized = (req: IncomingMessage): boolean => {
    if (!opts.apiToken) return false;
    const given = Buffer.from(req.headers.authorization ?? '');
    const wanted = Buffer.from(`Bearer ${opts.apiToken}`);
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> => {
    const abandon = new AbortController();
    inFlight.set(req.socket, { res, abandon });
    res.once('finish', () => inFlight.get(req.socket)?.res === res && inFlight.delete(req.socket));
    req.on('error', () => {}); // a client that goes away is not our error
    res.on('error', () => {});
    try {
      const { path, parts } = parseRequestTarget(req.url);
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
      const { routes, name, machine } = matchRoute(parts);
      const route = routes.find((r) => r.method === method)?.route;
      const bodyLimit = parts[0] === 'webhooks' ? limits.maxWebhookBodyBytes : limits.maxBodyBytes;
      const body = () => readBody(req, res, { limit: bodyLimit, idleMs: limits.bodyIdleTimeoutMs, expectContinue, abandoned: abandon.signal });
      if (Number(req.headers['content-length'] ?? 0) > bodyLimit) await body(); // refused before anything else
      if (!route) {
        if (routes.length === 0) throw new HttpError('NOT_FOUND', `no route for ${show(method)} ${show(path)}`);
        res.setHeader('allow', routes.map((r) => (r.method === 'GET' ? 'GET, HEAD' : r.method)).join(', '));
        throw new HttpError('METHOD_NOT_ALLOWED', `${show(path)} accepts ${routes.map((r) => r.method).join(', ')}, not ${show(method)}`);
      }
      switch (route) {
        case 'healthz':
          return json(res, 200, { ok: true });
        case 'readyz':
          return json(res, controller.ready ? 200 : 503, { ready: controller.ready });
        case 'metrics': {
          const text = await controller.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': controller.metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
          return void res.end(text);
        }
        case 'webhook': {
          const refusal = controller.webhookRefusal(name!, req.headers);
          if (refusal) return json(res, refusal.status, { message: refusal.message });
          const payload = await body();
          const r = controller.webhook(name!, req.headers, payload);
          return json(res, r.status, { message: r.message });
        }
        case 'list':
          return json(res, 200, { deployments: controller.list() });
        case 'get':
          return json(res, 200, controller.get(name!));
        case 'history':
          controller.get(name!);
          return json(res, 200, { deployment: name, generations: deploymentHistory(name!, { stateDir: controller.config.stateDir, services: controller.services }) });
        case 'abandon': {
          if (!authorized(req)) {
            log.warn({ path: show(path, 200) }, 'refused an API call without a valid bearer token');
            throw new HttpError('UNAUTHORIZED', opts.apiToken ? 'a valid bearer token is required' : 'mutating endpoints are off: configure apiToken');
          }
          const { reason, by } = parseAbandonBody(await body());
          controller.get(name!); // an unknown deployment is a 404 before anything waits
          const caller = `api ${req.socket.remoteAddress ?? 'unknown'}`;
          const r = await controller.abandonMachine(name!, machine!, reason, by ? `${by} (${caller})` : caller);
          return json(res, failureStatus(r), r);
        }
      }
      // The mutating endpoints: a bearer token first, then the body.
      if (!authorized(req)) {
        log.warn({ path: show(path, 200) }, 'refused an API call without a valid bearer token');
        throw new HttpError('UNAUTHORIZED', opts.apiToken ? 'a valid bearer token is required' : 'mutating endpoints are off: configure apiToken');
      }
      if (route === 'sync') return json(res, 202, controller.sync(name!));
      if (route === 'suspend') return json(res, 200, controller.suspend(name!));
      if (route === 'resume') return json(res, 202, controller.resume(name!));
      if (route === 'adopt') {
        const options = parseAdoptBody(await body());
        return json(res, 200, await controller.adopt(name!, options));
      }
      const { to } = parseRollbackBody(await body());
      controller.get(name!); // an unknown deployment is a 404 before anything waits
      const r = await controller.rollback(name!, to);
      return json(res, failureStatus(r), r);
    } catch (e) {
      answerError(req, res, e);
    }
  };

  /**
   * Answers a failed request; a connection that cannot take an answer any more is closed.
   * (`res.socket` is null while a pipelined answer waits its turn: `req.socket` is the connection.)
   */
  const answerError = (req: IncomingMessage, res: ServerResponse, e: unknown) => {
    if (e instanceof RequestAbandoned) return;
    if (res.headersSent || res.writableEnded || req.socket.destroyed) {
      if (!res.writableEnded) req.socket.destroy();
      return;
    }
    if (e instanceof HttpError) {
      // A body that was refused part-way is not read to its end: this connection is done.
      if (e.status === 413 || e.status === 408) closeAfter(req, res);
      return json(res, e.status, { error: { code: e.code, message: e.message } });
    }
    if (e instanceof StrataError) {
      return json(res, classOf(e.code).http, { error: e.toJSON() });
    }
    log.error({ err: e }, 'API request failed');
    json(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
  };

  /** The last line of defence: whatever a handler throws, the process and the server go on. */
  const guarded = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean) => {
    handle(req, res, expectContinue).catch((e: unknown) => {
      try {
        log.error({ err: e }, 'an API request handler failed');
        if (!res.headersSent && !req.socket.destroyed) json(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
        else req.socket.destroy();
      } catch {
        req.socket.destroy();
      }
    });
  };

  /** Runs a raw-socket handler; whatever it throws closes that connection, never the process. */
  const onSocket = (socket: Duplex, f: () => void) => {
    try {
      f();
    } catch (e) {
      log.error({ err: e }, 'an HTTP connection handler failed');
      socket.destroy();
    }
  };

  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node checks the two time-outs above (its default, 30 s, would let a request run
      // that much over its bound).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      keepAliveTimeout: 5_000,
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => guarded(req, res, false),
  );
  // `Expect: 100-continue`: the body limit is checked before the client is told to send it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => guarded(req, res, true));

  // A request Node's parser refused (malformed, headers too large, an unknown method) or one
  // that ran out of time: answer 4xx on the raw socket and close it cleanly.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
    onSocket(socket, () => {
      if (answered.has(socket)) return;
      answered.add(socket);
      const current = inFlight.get(socket);
      current?.abandon.abort();
      if (err.code === 'ECONNRESET' || !socket.writable || current?.res.headersSent) {
        socket.destroy();
        return;
      }
      const [code, message] = clientErrorAnswer(err, limits);
      const status = classOf(code).http;
      log.debug({ code: err.code, status }, `refused a request: ${message}`);
      socket.write(rawAnswer(status, STATUS_CODES[status] ?? 'Error', { error: { code, message } }));
      lingeringClose(socket);
    }),
  );
  // An error of the listening socket itself (say, out of file descriptors on accept) is logged;
  // without a listener Node would end the process.
  server.on('error', (e: NodeJS.ErrnoException) => log.error({ code: e.code }, `HTTP server error: ${e.message}`));
  // CONNECT (a proxy tunnel) is not something this server does; Node would drop the connection.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) =>
    onSocket(socket, () => {
      socket.on('error', () => socket.destroy());
      socket.write(rawAnswer(405, 'Method Not Allowed', { error: { code: 'METHOD_NOT_ALLOWED', message: 'CONNECT is not served here' } }));
      lingeringClose(socket);
    }),
  );
  return server;
}

/** The code and message for a request Node's parser refused; its status is the code's (src/errors/codes.ts). */
function clientErrorAnswer(err: NodeJS.ErrnoException, limits: HttpLimits): [string, string] {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['REQUEST_TIMEOUT', `the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms)`];
    case 'HPE_HEADER_OVERFLOW':
      return ['HEADERS_TOO_LARGE', 'the request line and headers are over 16 KiB'];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return ['BODY_TOO_LARGE', 'chunk extensions are too large'];
    case 'HPE_INVALID_METHOD':
      return ['BAD_REQUEST', 'unknown request method'];
    default:
      return ['BAD_REQUEST', `malformed HTTP request (${err.code ?? 'parse error'})`];
  }
}

export function listen(server: Server, address: string): Promise<{ host: string; port: number }> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

/** A queued operation's answer: 200 when it was done, else the status of its error's code (src/errors/codes.ts). */
function failureStatus(r: { ok: boolean; code?: string }): number {
  if (r.ok) return 200;
  return r.code ? classOf(r.code).http : 409;
}
