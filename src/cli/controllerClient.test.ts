import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from './exitCodes.ts';
import { postToController } from './controllerClient.ts';

// A stand-in controller on an ephemeral loopback port: each route answers as the real API does.
const answers: Record<string, { status: number; body: unknown }> = {
  '/op-refused': { status: 409, body: { ok: false, message: 'there is no generation before 1', code: 'NO_PREVIOUS_GENERATION' } },
  '/request-refused': { status: 401, body: { error: { code: 'USAGE', message: 'a bearer token is needed' } } },
  '/unknown-code': { status: 500, body: { ok: false, message: 'odd', code: 'NOT_A_STRATA_CODE' } },
  '/fine': { status: 200, body: { ok: true, message: 'rolled back to generation 1', generation: 3 } },
};
let server: Server;
let url: string;
const seen: { auth?: string; body?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, body });
      const a = answers[req.url ?? ''] ?? { status: 404, body: {} };
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const refusal = async (route: string) => {
  try {
    await postToController(url, route, 't0ken', { to: 1 }, 'the controller refused the rollback');
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('not refused');
};

describe('postToController: a refusal exits as the same operation would locally', () => {
  it("takes an operation's code from its answer, so NO_PREVIOUS_GENERATION exits 2 as it does locally", async () => {
    const e = await refusal('/op-refused');
    expect(e.code).toBe('NO_PREVIOUS_GENERATION');
    expect(exitCodeFor(e)).toBe(2);
    expect(e.message).toBe('the controller refused the rollback (HTTP 409): there is no generation before 1');
  });

  it("takes a request's code from its error object", async () => {
    expect(await refusal('/request-refused')).toMatchObject({ code: 'USAGE', message: 'the controller refused the rollback (HTTP 401): a bearer token is needed' });
  });

  it('does not take on a code this strata does not know', async () => {
    expect((await refusal('/unknown-code')).code).toBe('CONTROLLER_ERROR');
  });

  it('sends the token as a bearer and the body as JSON, and returns the answer', async () => {
    expect(await postToController(url, '/fine', 't0ken', { to: 1 }, 'refused')).toEqual({ ok: true, message: 'rolled back to generation 1', generation: 3 });
    expect(seen.at(-1)).toEqual({ auth: 'Bearer t0ken', body: '{"to":1}' });
  });

  it('says so when nothing answers', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(postToController(`http://127.0.0.1:${port}`, '/fine', 't', {}, 'refused')).rejects.toMatchObject({ code: 'CONTROLLER_UNREACHABLE' });
  });
});
