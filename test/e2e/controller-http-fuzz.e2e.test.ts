import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { condition, metricSeries, until } from '../support/controller.ts';
import { startControllerProcess, type ControllerProcess } from '../support/controllerProcess.ts';
import { rawRequest, type RawAnswer } from '../support/rawHttp.ts';

// A seeded, bounded fuzz of a real `strata controller` process over raw TCP: a few thousand
// requests with mutated paths (percent-encoding junk, empty segments, absolute forms), odd
// methods, junk and huge headers, and bodies of every shape, some authenticated with the real
// API token or webhook secret. Every answer must be a whole 2xx or 4xx answer (no 5xx, no
// reset, no silence); afterwards /healthz answers, the process lives and still works.

const SUBNET = '127.0.40';
const LISTEN = `${SUBNET}.2:18401`;
const SEED = 90_009;
const RUNS = 400; // batches of 5-15 concurrent requests: about 4000 requests

let base: string;
let c: ControllerProcess;

interface FuzzRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
  framing: 'length' | 'chunked' | 'none' | 'short-length';
  auth: 'none' | 'token' | 'junk';
  sign: 'none' | 'github' | 'gitea' | 'gitlab' | 'bearer' | 'forged';
}

const segment = fc.oneof(
  { weight: 7, arbitrary: fc.constantFrom('api', 'deployments', 'files', 'webhooks', 'healthz', 'readyz', 'metrics', 'history', 'sync', 'suspend', 'resume', 'rollback') },
  { weight: 2, arbitrary: fc.constantFrom('', '%', '%E0%A4%A', '%ff', '%00', '%2F', '%25', '%C0%AF', '%F0%9F%92%A5', '..', '.', 'a:b', '[', ']', '@', '~', '%0D%0A', 'toString', '__proto__', 'constructor') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12, unit: 'grapheme-ascii' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12, unit: 'binary-ascii' }).map((s) => s.replace(/[\r\n]/g, '')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.nat({ max: 5000 }).map((n) => 'x'.repeat(n)) },
);

const target = fc.oneof(
  { weight: 4, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`) },
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom('/webhooks/files', '/api/deployments/files', '/api/deployments/files/rollback', '/api/deployments/files/sync', '/healthz', '/metrics'), fc.constantFrom('', '', '', '/', '?x=1', '?%E0', '#frag', '//')).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: fc.constantFrom('//a:b/x', '*', 'a:b', 'http://c/healthz', 'http://[::1/x', 'https://c:99999/api', '', ' ', '/ /', '/healthz HTTP/1.0', '/%') },
);

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST') },
  { weight: 3, arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'SEARCH', 'PURGE', 'QUERY', 'CONNECT', 'PRI') },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('FOO', 'get', 'G ET', '', 'GET\t', 'ПОСТ'), fc.stringMatching(/^[A-Z]{1,12}$/)) },
);

const headerValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40, unit: 'grapheme-ascii' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary-ascii' }).map((s) => s.replace(/[\r\n]/g, ' ')) },
  { weight: 3, arbitrary: fc.constantFrom('', ' ', 'application/json', 'text/plain; charset=utf-16', '100-continue', 'close', 'keep-alive', 'upgrade', 'h2c', 'chunked', 'gzip', '0', '-1', '99999999999999999999', 'sha256=', 'Bearer ', 'é', '\u0000') },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => 'v'.repeat(n)) },
);

const header = fc.tuple(
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('content-type', 'accept', 'expect', 'connection', 'upgrade', 'x-github-delivery', 'x-gitea-delivery', 'x-gitlab-event-uuid', 'x-hub-signature-256', 'x-gitea-signature', 'x-gitlab-token', 'x-strata-signature', 'authorization', 'host', 'cookie', 'content-encoding', 'user-agent') },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/) },
    { weight: 1, arbitrary: fc.constantFrom('bad header', 'x:y', '', 'é', 'transfer-encoding', 'content-length') },
  ),
  headerValue,
);

const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 3, arbitrary: fc.json().map((j) => Buffer.from(j)) },
  { weight: 2, arbitrary: fc.constantFrom('null', '7', '[]', '{}', '{"to":1}', '{"to":"1"}', '{"to":null}', '{"ref":"refs/heads/main"}', '{"to":1e400}', '{"__proto__":{"to":1}}', '{', '\uFEFF{}').map((s) => Buffer.from(s)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(64 * 1024 + 1, 256 * 1024 + 1).map((n) => Buffer.alloc(n, 0x7b)) },
);

const request: fc.Arbitrary<FuzzRequest> = fc.record({
  method,
  target,
  headers: fc.array(header, { maxLength: 4 }),
  body,
  framing: fc.constantFrom('length', 'length', 'length', 'chunked', 'none', 'short-length'),
  auth: fc.constantFrom('none', 'none', 'token', 'junk'),
  sign: fc.constantFrom('none', 'none', 'github', 'gitea', 'gitlab', 'bearer', 'forged'),
});

function serialize(r: FuzzRequest): Buffer {
  const hmac = (key: string) => createHmac('sha256', key).update(r.body).digest('hex');
  const lines = [`${r.method} ${r.target} HTTP/1.1`, 'Host: controller'];
  if (r.auth === 'token') lines.push(`Authorization: Bearer ${c.apiToken}`);
  if (r.auth === 'junk') lines.push('Authorization: Bearer not-the-token');
  if (r.sign === 'github') lines.push(`X-Hub-Signature-256: sha256=${hmac(c.webhookSecret)}`, `X-GitHub-Delivery: ${randomBytes(4).toString('hex')}`);
  if (r.sign === 'gitea') lines.push(`X-Gitea-Signature: ${hmac(c.webhookSecret)}`);
  if (r.sign === 'gitlab') lines.push(`X-Gitlab-Token: ${c.webhookSecret}`, 'X-Gitlab-Event-UUID: replayed-every-time');
  if (r.sign === 'bearer' && r.auth !== 'token') lines.push(`Authorization: Bearer ${c.webhookSecret}`);
  if (r.sign === 'forged') lines.push(`X-Hub-Signature-256: sha256=${hmac('forged')}`, 'X-GitHub-Delivery: poisoned');
  for (const [name, value] of r.headers) lines.push(`${name}: ${value}`);
  let payload = r.body;
  if (r.framing === 'length') lines.push(`Content-Length: ${r.body.length}`);
  if (r.framing === 'short-length') lines.push(`Content-Length: ${Math.floor(r.body.length / 2)}`);
  if (r.framing === 'chunked') {
    lines.push('Transfer-Encoding: chunked');
    payload = Buffer.concat([Buffer.from(r.body.length ? `${r.body.length.toString(16)}\r\n` : ''), r.body, Buffer.from(r.body.length ? '\r\n0\r\n\r\n' : '0\r\n\r\n')]);
  }
  if (r.framing === 'none') payload = Buffer.alloc(0);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), payload]);
}

const describeRequest = (r: FuzzRequest) => JSON.stringify({ ...r, body: `${r.body.length} bytes: ${r.body.subarray(0, 60).toString('latin1')}`, headers: r.headers.map(([n, v]) => [n, v.slice(0, 60)]) });

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-controller-fuzz-'));
  c = await startControllerProcess({
    dir: base,
    listen: LISTEN,
    machineAddress: `${SUBNET}.11`,
    webhookSecret: `whs-${randomBytes(12).toString('hex')}`,
    apiToken: `tok-${randomBytes(12).toString('hex')}`,
    // Short bounds, so that a request the fuzz left incomplete is answered (408) quickly.
    http: '  headersTimeout: 1s\n  requestTimeout: 2s\n  bodyIdleTimeout: 1s\n  maxBodySize: 64KiB\n  maxWebhookBodySize: 256KiB',
  });
  await until(async () => condition(await c.api.status('files'), 'Ready')?.status === 'True', 30_000, 'the first deployment of files');
});

afterAll(async () => {
  await c?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('a seeded fuzz of the controller HTTP surface', () => {
  it('answers every request with a whole 2xx or 4xx, and lives on', async () => {
    const statuses = new Map<number, number>();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 5, maxLength: 15 }), async (batch) => {
        const answers: RawAnswer[] = await Promise.all(batch.map((r) => rawRequest(c.host, c.port, serialize(r), { head: r.method === 'HEAD', timeoutMs: 15_000 })));
        sent += batch.length;
        answers.forEach((a, i) => {
          const what = `${describeRequest(batch[i]!)}\n→ ${a.failure ?? a.status} after ${a.ms} ms: ${a.text.slice(0, 400)}`;
          if (a.failure !== undefined) throw new Error(`no whole answer (${a.failure}) to ${what}`);
          if (a.status === undefined || a.status < 200 || a.status > 499) throw new Error(`answered ${a.status} to ${what}`);
          statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        });
        if (c.proc.done()) throw new Error(`the controller exited:\n${c.proc.stderr().slice(-2000)}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );

    expect(sent).toBeGreaterThan(3500);
    // The fuzz reached every kind of answer, not only one refusal.
    for (const status of [200, 202, 400, 401, 404, 405, 413, 431]) expect(statuses.get(status) ?? 0, `${status} in ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);

    // Alive, healthy and still doing its job.
    expect(c.proc.done()).toBe(false);
    expect((await c.api.request('GET', '/healthz')).status).toBe(200);
    expect((await c.api.status('files')).name).toBe('files');
    expect(c.log().filter((l) => /API request (handler )?failed|HTTP connection handler failed/.test(String(l.msg))).map((l) => l.err ?? l.msg)).toEqual([]);
    const reconciles = async () =>
      metricSeries(await c.api.metrics(), 'strata_reconcile_total')
        .filter((s) => s.labels.deployment === 'files')
        .reduce((n, s) => n + s.value, 0);
    await c.api.post('files', 'resume'); // the fuzz may have suspended it
    const before = await reconciles();
    expect((await c.api.webhook('files', '{}', { authorization: `Bearer ${c.webhookSecret}` })).status).toBe(202);
    await until(async () => (await reconciles()) > before, 20_000, 'a reconcile after the fuzz');
  }, 120_000);
});
