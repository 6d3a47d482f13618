import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { condition, hmacHex, metricSeries, metricValue, sleep, until } from '../support/controller.ts';
import { startControllerProcess, type ControllerProcess } from '../support/controllerProcess.ts';
import { rawRequest } from '../support/rawHttp.ts';

// The HTTP surface of a real `strata controller` process with its default bounds (10 s for
// headers, 30 s for a whole request, 10 s of body silence, 1 MiB API bodies, 25 MiB webhook
// bodies): no request ends the process, every bad one gets a 4xx, slow and huge requests are
// cut within their bounds, and a replayed webhook delivery queues nothing.

const SUBNET = '127.0.40';
const LISTEN = `${SUBNET}.1:18400`;

let base: string;
let c: ControllerProcess;

const raw = (request: string | Buffer, opts?: Parameters<typeof rawRequest>[3]) => rawRequest(c.host, c.port, request, opts);
const get = (target: string) => raw(`GET ${target} HTTP/1.1\r\nHost: controller\r\nConnection: close\r\n\r\n`);
const alive = async () => {
  expect(c.proc.done(), `the controller exited:\n${c.proc.stderr().slice(-2000)}`).toBe(false);
  expect((await c.api.request('GET', '/healthz')).status).toBe(200);
};
/** Reconciles of the deployment so far, whatever their result. */
const reconciles = async () =>
  metricSeries(await c.api.metrics(), 'strata_reconcile_total')
    .filter((s) => s.labels.deployment === 'files')
    .reduce((n, s) => n + s.value, 0);
const deliveries = async (result: string) => metricValue(await c.api.metrics(), 'strata_webhook_deliveries_total', { deployment: 'files', result });

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-controller-http-'));
  c = await startControllerProcess({
    dir: base,
    listen: LISTEN,
    machineAddress: `${SUBNET}.10`,
    webhookSecret: `whs-${randomBytes(12).toString('hex')}`,
    apiToken: `tok-${randomBytes(12).toString('hex')}`,
  });
  await until(async () => condition(await c.api.status('files'), 'Ready')?.status === 'True', 30_000, 'the first deployment of files');
});

afterAll(async () => {
  await c?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('the controller HTTP surface', () => {
  it('answers 400 to the targets that used to end the process, and to their relatives, and lives on', async () => {
    for (const target of ['//a:b/x', '/api/deployments/%E0%A4%A', '//[/x', '/api/deployments/%', '/api/deployments/%zz/history', '/webhooks/%ff', '/a%00b', '*', 'a:b']) {
      const r = await get(target);
      expect(r.status, `${target}: ${r.text}`).toBe(400);
      expect(r.text).toMatch(/"code": ?"BAD_REQUEST"/);
    }
    expect((await get('/api/deployments/%E0%A4%A')).text).toContain('is not valid percent-encoded UTF-8');
    // A POST whose target is malformed is refused before its body is looked at.
    expect((await raw('POST //a:b/rollback HTTP/1.1\r\nHost: c\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnull')).status).toBe(400);
    // Requests Node's parser refuses are answered, not dropped.
    for (const [request, status] of [
      ['FOO /healthz HTTP/1.1\r\nHost: c\r\n\r\n', 400],
      ['GET /healthz HTTP/1.1\r\n\r\n', 400], // no Host
      ['GET /he alth HTTP/1.1\r\nHost: c\r\n\r\n', 400],
      ['POST /webhooks/files HTTP/1.1\r\nHost: c\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
      ['POST /webhooks/files HTTP/1.1\r\nHost: c\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      [`GET /healthz HTTP/1.1\r\nHost: c\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431],
      ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
      ['DELETE /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n', 405],
      ['\u0000\u0001\u0002\r\n\r\n', 400],
    ] as const) {
      const r = await raw(request);
      expect(r.failure, JSON.stringify(request.slice(0, 60))).toBeUndefined();
      expect(r.status, JSON.stringify(request.slice(0, 60))).toBe(status);
    }
    // A pipelined good request after a bad one is still answered, on the same connection.
    const pipelined = await raw('GET //a:b/x HTTP/1.1\r\nHost: c\r\n\r\nGET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n', { waitForClose: true });
    expect(pipelined.status).toBe(400);
    await alive();
  });

  it('answers 413 to a 50 MB body, through to a client that sends all of it, and closes cleanly', async () => {
    const big = Buffer.alloc(50 * 1024 * 1024, 0x61);
    // fetch sends the whole body before it reads: a reset would lose the answer.
    const r = await fetch(`${c.api.base}/webhooks/files`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(413);
    expect(await r.text()).toMatch(/over the limit of 26214400 bytes/);
    // Without a Content-Length (chunked), refused once the limit is crossed; without any
    // signature or token, refused before the body is read at all.
    const chunked = (headers: Record<string, string>) => new Promise<{ status?: number; error?: string }>((resolve) => {
      const req = httpRequest({ host: c.host, port: c.port, method: 'POST', path: '/webhooks/files', headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code }));
      let sent = 0;
      const chunk = Buffer.alloc(1024 * 1024, 0x62);
      const write = () => {
        while (sent < 50) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', write);
        }
        req.end();
      };
      write();
    });
    expect(await chunked({ 'x-hub-signature-256': 'sha256=0' })).toEqual({ status: 413 });
    expect(await chunked({})).toEqual({ status: 401 });
    // A client that reads only once it has sent everything still gets the answer, not a reset.
    const patient = await raw(Buffer.concat([Buffer.from(`POST /webhooks/files HTTP/1.1\r\nHost: c\r\nContent-Length: ${big.length}\r\n\r\n`), big]), { readAfterWrite: true });
    expect([patient.status, patient.failure]).toEqual([413, undefined]);
    // `Expect: 100-continue`: refused before the body is sent at all.
    const early = await raw(`POST /webhooks/files HTTP/1.1\r\nHost: c\r\nContent-Length: ${big.length}\r\nExpect: 100-continue\r\n\r\n`);
    expect(early.status).toBe(413);
    expect(early.text).not.toContain('100 Continue');
    // API bodies are limited to 1 MiB.
    const api = await c.api.post('files', 'rollback', { body: JSON.stringify({ to: 1, pad: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(api.status).toBe(413);
    expect(api.json.error.message).toMatch(/over the limit of 1048576 bytes/);
    await alive();
  });

  it('answers 400 with a clear message to every malformed API body, and 401/404/405 where they belong', async () => {
    const cases: [string, RegExp][] = [
      ['null', /must be a JSON object such as \{"to": 12\} or \{\}; got null/],
      ['7', /got a number/],
      ['[1, 2]', /got an array/],
      ['"to"', /got a string/],
      ['{"to": "1"}', /"to" must be a generation number/],
      ['{"to": -1}', /"to" must be a generation number/],
      ['{"to": 1.5}', /"to" must be a generation number/],
      ['{"to": {}}', /"to" must be a generation number/],
      ['{"to": 1, "force": true}', /unknown field "force"/],
      ['{"to": 1', /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const r = await c.api.post('files', 'rollback', { body });
      expect(r.status, `${body}: ${r.text}`).toBe(400);
      expect(r.json.error.message, body).toMatch(message);
    }
    const notUtf8 = await raw(Buffer.concat([Buffer.from(`POST /api/deployments/files/rollback HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer ${c.apiToken}\r\nContent-Length: 3\r\nConnection: close\r\n\r\n`), Buffer.from([0x7b, 0xff, 0x7d])]));
    expect(notUtf8.status).toBe(400);
    expect(notUtf8.text).toContain('not UTF-8');
    // Nothing was rolled back or suspended by any of these.
    const s = await c.api.status('files');
    expect([s.generation, s.suspended]).toEqual([1, false]);

    expect((await c.api.post('files', 'rollback', { body: 'null', token: null })).status).toBe(401);
    expect((await c.api.post('files', 'rollback', { body: '{}', token: 'wrong' })).status).toBe(401);
    for (const action of ['sync', 'suspend', 'resume', 'rollback', 'history']) {
      const r = await c.api.request(action === 'history' ? 'GET' : 'POST', `/api/deployments/${encodeURIComponent('no such/deployment')}/${action}`, { body: action === 'rollback' ? '{}' : undefined });
      expect(r.status, action).toBe(404);
    }
    expect((await c.api.request('GET', '/api/deployments/%F0%9F%92%A5')).status).toBe(404);
    expect((await c.api.request('POST', '/webhooks/no-such-deployment', { body: '{}' })).status).toBe(404);
    expect((await c.api.request('PUT', '/api/deployments/files')).status).toBe(405);
    expect((await c.api.request('GET', '/api/deployments/files/sync')).status).toBe(405);
    expect((await c.api.request('GET', '/webhooks/files')).status).toBe(405);
    expect((await c.api.request('HEAD', '/healthz')).status).toBe(200);
    expect((await get('/api/../healthz')).status).toBe(404); // not normalised into a route
    await alive();
  });

  it('acknowledges a replayed webhook delivery and queues nothing for it; an unauthenticated sender cannot poison an id', async () => {
    const body = '{"ref":"refs/heads/main"}';
    const github = { 'x-hub-signature-256': `sha256=${hmacHex(c.webhookSecret, body)}` };
    const id = `gh-${randomBytes(8).toString('hex')}`;

    // Someone without the secret sends the id first: refused, and the id is not remembered.
    const forged = await c.api.webhook('files', body, { 'x-hub-signature-256': `sha256=${hmacHex('guess', body)}`, 'x-github-delivery': id });
    expect(forged.status).toBe(401);

    // A first delivery from each provider queues a reconcile.
    const gitea = { 'x-gitea-signature': hmacHex(c.webhookSecret, body), 'x-gitea-delivery': `gt-${randomBytes(8).toString('hex')}` };
    const gitlab = { 'x-gitlab-token': c.webhookSecret, 'x-gitlab-event-uuid': `gl-${randomBytes(8).toString('hex')}` };
    const deliveriesOf = [{ ...github, 'x-github-delivery': id }, gitea, gitlab];
    for (const headers of deliveriesOf) {
      const n = await reconciles();
      const r = await c.api.webhook('files', body, headers);
      expect(r.status, r.text).toBe(202);
      await until(async () => (await reconciles()) > n, 20_000, 'the reconcile a first delivery queued');
    }
    const settled = await until(
      async () => {
        const n = await reconciles();
        await sleep(500);
        return n === (await reconciles()) ? n : undefined;
      },
      20_000,
      'the reconciles to settle',
    );
    // The same deliveries again: acknowledged, nothing queued.
    for (const headers of deliveriesOf) {
      const r = await c.api.webhook('files', body, headers);
      expect(r.status, r.text).toBe(200);
      expect(r.json.message).toMatch(/^delivery \S+ was received already at .*; nothing queued$/);
    }
    const replay = await c.api.webhook('files', body, { ...github, 'x-github-delivery': id });
    expect(replay.json.message).toContain(`delivery ${id} was received already`);
    // No reconcile followed any replay.
    await sleep(2000);
    expect(await reconciles()).toBe(settled);
    expect(await deliveries('replayed')).toBe(4);
    expect(await deliveries('refused')).toBeGreaterThanOrEqual(1);
    expect(c.log().some((l) => l.delivery === id && /seen before/.test(String(l.msg)))).toBe(true);
    // A delivery id too long to be one is refused, not remembered.
    expect((await c.api.webhook('files', body, { ...github, 'x-github-delivery': 'x'.repeat(300) })).status).toBe(400);
    await alive();
  });

  it('keeps a transition in flight going while bad requests arrive', async () => {
    const sha = c.repo.commit('a new page', { 'site/index.html': '<p>hello again</p>\n' });
    const junk = ['//a:b/x', '/api/deployments/%E0%A4%A', '/webhooks/%ff', '*'];
    const bursts = Array.from({ length: 40 }, (_, i) => get(junk[i % junk.length]!));
    const rollbacks = Array.from({ length: 10 }, () => c.api.post('files', 'rollback', { body: 'null' }));
    const answers = await Promise.all(bursts);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 400));
    expect((await Promise.all(rollbacks)).map((r) => r.status)).toEqual(rollbacks.map(() => 400));
    const s = await until(
      async () => {
        const x = await c.api.status('files');
        return x.lastAppliedRevision === sha && condition(x, 'Ready')?.status === 'True' ? x : undefined;
      },
      30_000,
      'the new commit to be deployed',
    );
    expect(s.generation).toBe(2);
    expect(readFileSync(join(c.files, 'site', 'index.html'), 'utf8')).toBe('<p>hello again</p>\n');
    await alive();
  });

  it('cuts slow requests within their bounds: a body trickled one byte every 3 s, trickled headers, a silent connection, a stalled body', async () => {
    const [body, headers, silent, stalled] = await Promise.all([
      raw('POST /webhooks/files HTTP/1.1\r\nHost: c\r\nX-Hub-Signature-256: sha256=0\r\nContent-Length: 100\r\n\r\n', { trickle: { byte: 'a', everyMs: 3000 }, timeoutMs: 45_000, waitForClose: true }),
      raw('GET /healthz HTTP/1.1\r\nHost: c\r\n', { trickle: { byte: 'x', everyMs: 1000 }, timeoutMs: 45_000, waitForClose: true }),
      raw('', { timeoutMs: 45_000, waitForClose: true }),
      raw(`POST /api/deployments/files/rollback HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer ${c.apiToken}\r\nContent-Length: 100\r\n\r\n{"to":`, { timeoutMs: 45_000, waitForClose: true }),
    ]);
    // The whole request within 30 s (checked every second).
    expect(body.status, body.text).toBe(408);
    expect(body.ms).toBeGreaterThan(29_000);
    expect(body.ms).toBeLessThan(33_000);
    expect(body.closedAfterMs).toBeLessThan(40_000);
    // Headers within 10 s, for a trickle and for silence.
    for (const r of [headers, silent]) {
      expect(r.status, r.text).toBe(408);
      expect(r.ms).toBeGreaterThan(9_000);
      expect(r.ms).toBeLessThan(13_000);
      expect(r.closedAfterMs).toBeLessThan(20_000);
    }
    // A body that stops arriving: 10 s of silence.
    expect(stalled.status, stalled.text).toBe(408);
    expect(stalled.text).toContain('the request body stalled');
    expect(stalled.ms).toBeGreaterThan(9_000);
    expect(stalled.ms).toBeLessThan(13_000);
    await alive();
  }, 60_000);
});
