import { existsSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';
import { helloWorldFixture, type Fixture } from '../support/testnet.ts';

// First contact (docs/runtime.md, "Platforms"): a BusyBox host without `mv` and without any
// sha256 tool is refused before anything on it changes, with the missing commands named.
let fx: Fixture;
let root: string;
const applets = (m: string) => join(fx.host(m).dir, 'shell/bin');
const REMOVED = ['mv', 'sha256sum'];

beforeAll(async () => {
  fx = await helloWorldFixture('127.0.72', ['test1', 'test2', 'test3'], 'busybox');
  root = join(fx.work, 'strata.testnet.yaml');
  // The host's /usr/bin is this directory (bound in its namespace): the applets go from its PATH.
  for (const a of REMOVED) rmSync(join(applets('test2'), a));
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

describe('a machine that cannot run the runtime', () => {
  it('is refused with TARGET_UNSUPPORTED naming the machine and what it lacks, and nothing changes on it', async () => {
    const r = await cli('apply', root, '--state', fx.stateDir, '--json');
    expect(r.code).toBe(1);
    const err = JSON.parse(r.out);
    expect(err.error).toMatchObject({ code: 'TARGET_UNSUPPORTED', data: { machine: 'test2', missing: expect.arrayContaining(['mv', 'sha256sum|shasum|sha256|openssl']) } });
    expect(err.error.message).toMatch(/^test2 cannot run the strata runtime: it lacks mv, sha256sum or shasum or sha256 or openssl/);
    // Nothing on test2: not even the runtime root.
    expect(readdirSync(fx.path('test2', '/var/lib/strata'))).toEqual([]);
    await expect(ask(fx.host('test2').address, 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(existsSync(join(fx.stateDir, 'deployments/hello-world/current'))).toBe(false);
  });

  it('is accepted once it has them', async () => {
    for (const a of REMOVED) symlinkSync('busybox', join(applets('test2'), a));
    const r = await cli('apply', root, '--state', fx.stateDir, '--json');
    expect(r.code, r.err).toBe(0);
    expect(await ask(fx.host('test1').address, 5001)).toBe('Hello world!\n');
  });
});
