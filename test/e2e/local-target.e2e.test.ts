import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';

// The proxy variant on `target: local` machines: no SSH, no root; the same runtime runs on
// this host under per-machine roots in the state directory, each on its own loopback address.
const stateDir = mkdtempSync(join(tmpdir(), 'strata-local-'));
const root = new URL('../../examples/hello-world/strata.proxy.yaml', import.meta.url).pathname;

afterAll(async () => {
  await cli('destroy', root, '--state', stateDir, '-q');
  rmSync(stateDir, { recursive: true, force: true });
});

describe('local target', () => {
  it('deploys client → proxy → server on three local machines', async () => {
    const r = await cli('apply', root, '--state', stateDir, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).steps).toBe(3);
    expect(existsSync(join(stateDir, 'machines/test3/store'))).toBe(true);
    // The client on test1 asks the proxy on test2, which forwards to the server on test3.
    expect(await ask('127.0.2.1', 5011)).toBe('Hello world!\n');
    expect(await ask('127.0.2.2', 5012)).toBe('Hello world!\n');
    await expect(ask('127.0.2.1', 5010)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('status shows every service running, and destroy stops them all', async () => {
    const s = await cli('status', root, '--state', stateDir, '--json');
    const report = JSON.parse(s.out);
    const services = report.machines.flatMap((m: { items: { name: string; state: string }[] }) => m.items.map((i) => `${i.name}:${i.state}`));
    expect(services.sort()).toEqual(['hello-world-client:running', 'hello-world-proxy:running', 'hello-world-server:running']);

    const d = await cli('destroy', root, '--state', stateDir, '--json');
    expect(d.code).toBe(0);
    await expect(ask('127.0.2.3', 5010)).rejects.toThrow(/ECONNREFUSED/);
    await expect(ask('127.0.2.1', 5011)).rejects.toThrow(/ECONNREFUSED/);
    const after = JSON.parse((await cli('status', root, '--state', stateDir, '--json')).out);
    expect(after.machines.every((m: { items: unknown[] }) => m.items.length === 0)).toBe(true);

    // Rollback brings the destroyed generation's predecessor back.
    const back = await cli('rollback', root, '--state', stateDir, '-q');
    expect(back.code).toBe(0);
    expect(await ask('127.0.2.1', 5011)).toBe('Hello world!\n');
  });
});
