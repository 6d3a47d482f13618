import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { deploymentHistory } from '../api/history.ts';
import { StrataError } from '../errors.ts';
import type { Controller } from './controller.ts';

const MAX_BODY = 1024 * 1024;

/**
 * The controller's HTTP face: health, readiness, Prometheus metrics, the deployments API
 * (mutations behind a bearer token) and webhooks. Documented in docs/controller.md.
 */
export function createApiServer(controller: Controller, opts: { log: Logger; apiToken?: string }): Server {
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body, null, 2)}\n`);
  };
  const authorized = (req: IncomingMessage): boolean => {
    if (!opts.apiToken) return false;
    const given = Buffer.from(req.headers.authorization ?? '');
    const wanted = Buffer.from(`Bearer ${opts.apiToken}`);
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  };

  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://controller');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    void (async () => {
      try {
        if (method === 'GET' && url.pathname === '/healthz') return json(res, 200, { ok: true });
        if (method === 'GET' && url.pathname === '/readyz') return json(res, controller.ready ? 200 : 503, { ready: controller.ready });
        if (method === 'GET' && url.pathname === '/metrics') {
          res.writeHead(200, { 'content-type': controller.metrics.registry.contentType });
          return res.end(await controller.metrics.registry.metrics());
        }
        if (method === 'POST' && parts[0] === 'webhooks' && parts.length === 2) {
          const body = await readBody(req);
          const r = controller.webhook(parts[1]!, req.headers, body);
          return json(res, r.status, { message: r.message });
        }
        if (parts[0] === 'api' && parts[1] === 'deployments') {
          if (method === 'GET' && parts.length === 2) return json(res, 200, { deployments: controller.list() });
          const name = parts[2]!;
          if (method === 'GET' && parts.length === 3) return json(res, 200, controller.get(name));
          if (method === 'GET' && parts.length === 4 && parts[3] === 'history') {
            controller.get(name);
            return json(res, 200, { deployment: name, generations: deploymentHistory(name, { stateDir: controller.config.stateDir }) });
          }
          if (method === 'POST' && parts.length === 6 && parts[3] === 'machines' && parts[5] === 'abandon') {
            if (!authorized(req)) {
              opts.log.warn({ path: url.pathname }, 'refused an API call without a valid bearer token');
              return json(res, 401, { error: { code: 'UNAUTHORIZED', message: opts.apiToken ? 'a valid bearer token is required' : 'mutating endpoints are off: configure apiToken' } });
            }
            const body = await readBody(req);
            const parsed = (body.length ? JSON.parse(body.toString('utf8')) : null) as { reason?: unknown; by?: unknown } | null;
            const reason = parsed && typeof parsed === 'object' ? parsed.reason : undefined;
            const by = parsed && typeof parsed === 'object' ? parsed.by : undefined;
            if (typeof reason !== 'string' || (by !== undefined && typeof by !== 'string')) {
              return json(res, 400, { error: { code: 'USAGE', message: 'the body must be {"reason": TEXT, "by": TEXT (optional)}' } });
            }
            const caller = `api ${req.socket.remoteAddress ?? 'unknown'}`;
            const r = await controller.abandonMachine(name, parts[4]!, reason, by ? `${by} (${caller})` : caller);
            return json(res, r.ok ? 200 : r.code === 'USAGE' || r.code === 'MACHINE_NOT_FOUND' ? 400 : 409, r);
          }
          if (method === 'POST' && parts.length === 4) {
            if (!authorized(req)) {
              opts.log.warn({ path: url.pathname }, 'refused an API call without a valid bearer token');
              return json(res, 401, { error: { code: 'UNAUTHORIZED', message: opts.apiToken ? 'a valid bearer token is required' : 'mutating endpoints are off: configure apiToken' } });
            }
            const action = parts[3];
            if (action === 'sync') return json(res, 202, controller.sync(name));
            if (action === 'suspend') return json(res, 200, controller.suspend(name));
            if (action === 'resume') return json(res, 202, controller.resume(name));
            if (action === 'rollback') {
              const body = await readBody(req);
              const to = body.length ? (JSON.parse(body.toString('utf8')) as { to?: unknown }).to : undefined;
              if (to !== undefined && (!Number.isInteger(to) || (to as number) < 1)) return json(res, 400, { error: { code: 'USAGE', message: '"to" must be a generation number' } });
              const r = await controller.rollback(name, to as number | undefined);
              return json(res, r.ok ? 200 : 409, r);
            }
          }
        }
        json(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${method} ${url.pathname}` } });
      } catch (e) {
        if (e instanceof StrataError) return json(res, e.code === 'DEPLOYMENT_NOT_FOUND' ? 404 : e.code === 'BODY_TOO_LARGE' ? 413 : 409, { error: e.toJSON() });
        if (e instanceof SyntaxError) return json(res, 400, { error: { code: 'USAGE', message: 'the body is not valid JSON' } });
        opts.log.error({ err: e }, 'API request failed');
        json(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
      }
    })();
  });
}

export function listen(server: Server, address: string): Promise<{ host: string; port: number }> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new StrataError('BODY_TOO_LARGE', `request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
