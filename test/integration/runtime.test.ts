import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Item } from '../../src/manifest/types.ts';
import { LocalTarget } from '../../src/targets/local.ts';
import type { RunOptions } from '../../src/targets/target.ts';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { runtimePath } from '../../src/targets/runtime/script.ts';
import { encodeUpload } from '../../src/targets/stream.ts';
import { ask } from '../support/net.ts';

// The target runtime itself, run by /bin/sh through the local target, fed items that model
// validation would have refused: the runtime must refuse them on its own.
const base = mkdtempSync(join(tmpdir(), 'strata-rt-'));
const root = join(base, 'root');
// The deployment's own directory under the machine's root (the store is shared at root).
const dr = join(root, 'deployments', 'rt');
const rt = new ShellMachineRuntime(new LocalTarget('m1'), root, '127.0.3.1', 'rt');
const started: Item[] = [];

afterAll(async () => {
  for (const item of started) await rt.deactivate(item);
  rmSync(base, { recursive: true, force: true });
});

function item(key: string, module: Item['module'], spec: Item['spec'], artifact?: string): Item {
  return { key, machine: 'm1', layer: 'service', name: key, module, spec, artifact, dependsOn: [], stateful: false, hash: 'x' };
}

const file = (path: string, text: string) => ({ path, mode: '644', content: Buffer.from(text) });

describe('target runtime', () => {
  it('installs itself on first use, content-addressed', async () => {
    expect(existsSync(runtimePath(root))).toBe(false);
    expect((await rt.lock('erin:1:e', ['abc'])).missing).toEqual(['abc']);
    await rt.unlock('erin:1:e');
    expect(existsSync(runtimePath(root))).toBe(true);
  });

  it('stores uploaded artifacts and reports only the missing ones', async () => {
    await rt.upload([{ hash: 'art1', entries: [file('a.txt', 'A'), file('dir/b.txt', 'B')] }]);
    expect(readFileSync(join(root, 'store/art1/dir/b.txt'), 'utf8')).toBe('B');
    expect((await rt.lock('erin:1:e', ['art1', 'art2'])).missing).toEqual(['art2']);
    await rt.unlock('erin:1:e');
  });

  it('installs itself with the first command when a machine is expected fresh; the lock reports missing artifacts', async () => {
    const freshRoot = join(base, 'fresh-root');
    const fresh = new ShellMachineRuntime(new LocalTarget('m2'), freshRoot, '127.0.3.1', 'rt');
    fresh.expectFresh();
    expect((await fresh.lock('carol:1:c', ['h1', 'h2'])).missing).toEqual(['h1', 'h2']);
    expect(existsSync(runtimePath(freshRoot))).toBe(true);
    // The runtime's own upload form without hashes named up front still works.
    const r = await fresh.target.run(['sh', runtimePath(freshRoot), join(freshRoot, 'deployments', 'rt'), 'upload'], { input: encodeUpload([{ hash: 'h1', entries: [file('x.txt', 'X')] }]) });
    expect(r.stderr).toBe('');
    expect(readFileSync(join(freshRoot, 'store/h1/x.txt'), 'utf8')).toBe('X');
    // Expected fresh but not: the runtime bytes are skipped and the command runs as usual.
    fresh.expectFresh();
    expect((await fresh.lock('carol:1:c', ['h1', 'h2'])).missing).toEqual(['h2']);
    await fresh.unlock('carol:1:c');
    // The lock command can carry the artifacts: stored once the lock is taken, none if refused.
    const h3 = [{ hash: 'h3', entries: [file('y.txt', 'Y')] }];
    await fresh.lock('dave:1:d');
    await expect(fresh.lock('carol:1:c', [], h3)).rejects.toMatchObject({ code: 'MACHINE_LOCKED' });
    expect(existsSync(join(freshRoot, 'store/h3'))).toBe(false);
    await fresh.unlock('dave:1:d');
    expect((await fresh.lock('carol:1:c', [], [...h3, { hash: 'h1', entries: [file('x.txt', 'X')] }])).missing).toEqual([]);
    expect(readFileSync(join(freshRoot, 'store/h3/y.txt'), 'utf8')).toBe('Y');
    expect(readdirSync(join(freshRoot, 'store')).sort()).toEqual(['h1', 'h3']);
    expect(existsSync(join(freshRoot, 'lock.guard'))).toBe(false);
    await fresh.unlock('carol:1:c');
  });

  it('stores nothing of an upload stream cut short', async () => {
    const full = encodeUpload([{ hash: 'cut1', entries: [file('a.txt', 'A')] }, { hash: 'cut2', entries: [file('b.txt', 'B'.repeat(1000))] }]);
    const r = await rt.target.run(['sh', runtimePath(root), dr, 'upload', 'cut1', 'cut2'], { input: full.subarray(0, full.length - 500) });
    expect(r.code).toBe(1);
    expect(existsSync(join(root, 'store/cut1'))).toBe(false);
    expect(readdirSync(join(root, 'store')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses an upload stream whose paths leave the artifact', async () => {
    await expect(rt.upload([{ hash: 'evil', entries: [file('../../escaped', 'x')] }])).rejects.toThrow(/unsafe path/);
    expect(existsSync(join(root, 'escaped'))).toBe(false);
    expect(existsSync(join(root, 'store/evil'))).toBe(false);
  });

  it('refuses unsafe item keys and hashes', async () => {
    const r = await rt.target.run(['sh', runtimePath(root), dr, 'upload', '../x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unsafe name/);
  });

  it('refuses to place files outside its root and the allowed paths', async () => {
    for (const path of ['/etc', `${base}/elsewhere`, `${root}/../outside`]) {
      const r = await rt.activate(item('s.files', 'file', { path, allowed: [`${base}/allowed`] }, 'art1'));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/refusing path/);
    }
    expect(existsSync(`${base}/elsewhere`)).toBe(false);
    const ok = await rt.activate(item('s.files', 'file', { path: `${base}/allowed/x`, allowed: [`${base}/allowed`] }, 'art1'));
    expect(ok.stderr).toBe('');
    expect(readFileSync(`${base}/allowed/x/dir/b.txt`, 'utf8')).toBe('B');
  });

  it('waits for a readiness command, and reports a process that dies with its log', async () => {
    await rt.upload([{ hash: 'srv', entries: [file('server.cjs', "require('net').createServer(s=>s.end('up\\n')).listen(5300, process.env.HOST, () => require('fs').writeFileSync(process.env.STATE_DIR + '/ready', ''))")] }]);
    const good = item('s.srv', 'process', { start: 'node server.cjs', env: { HOST: '127.0.3.1' }, ready: { command: 'test -f "$STATE_DIR/ready"', timeout: 10 } }, 'srv');
    const r = await rt.activate(good);
    started.push(good);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await ask('127.0.3.1', 5300)).toBe('up\n');

    const dying = item('s.dying', 'process', { start: 'echo "cannot start: missing config" >&2; exit 3', env: {}, ready: { port: 5301, timeout: 5 } });
    const d = await rt.activate(dying);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/process exited while starting/);
    expect(d.stderr).toMatch(/cannot start: missing config/);
    expect(existsSync(join(dr, 'items/s.dying'))).toBe(false);
  });

  it('refuses to start a process whose port is already taken', async () => {
    const clash = item('s.clash', 'process', { start: 'sleep 30', env: {}, ready: { port: 5300, timeout: 5 } });
    const r = await rt.activate(clash);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/port 5300 on 127.0.3.1 is already in use/);
  });

  it('activates items asked for together with one command, each with its own result', async () => {
    const commands: string[] = [];
    const inner = new LocalTarget('m1');
    const counting = { machine: 'm1', bytesSent: 0, close: async () => {}, run: (argv: readonly string[], o?: RunOptions) => (commands.push(argv[6] ?? ''), inner.run(argv, o)) };
    const batchRt = new ShellMachineRuntime(counting, root, '127.0.3.1', 'rt');
    const a = item('s.batch-a', 'process', { start: 'exec node server.cjs', env: { HOST: '127.0.3.1' }, ready: { command: 'test -f "$STATE_DIR/ready"', timeout: 10 } }, 'srv');
    const b = item('s.batch-b', 'process', { start: 'echo "b refuses to start" >&2; exit 4', env: {}, ready: { port: 5302, timeout: 5 } });
    const c = item('s.batch-c', 'directory', { path: `${base}/allowed/batch-dir`, mode: '750', allowed: [`${base}/allowed`] });
    // `a` serves port 5300 like s.srv: stop that one first.
    await rt.deactivate(started.find((i) => i.key === 's.srv')!);
    const [ra, rb, rc] = await Promise.all([batchRt.activate(a), batchRt.activate(b), batchRt.activate(c)]);
    started.push(a);
    expect(commands.filter((v) => v === 'activate')).toHaveLength(1);
    expect([ra.code, rb.code, rc.code]).toEqual([0, 1, 0]);
    expect(rb.stderr).toMatch(/process exited while starting/);
    expect(rb.stderr).toMatch(/b refuses to start/);
    expect(ra.stderr + rc.stderr).toBe('');
    expect(await ask('127.0.3.1', 5300)).toBe('up\n');
    expect(existsSync(`${base}/allowed/batch-dir`)).toBe(true);
    expect(existsSync(join(dr, 'items/s.batch-b'))).toBe(false);
    const status = await rt.status();
    expect(status.items.find((i) => i.key === 's.batch-a')).toMatchObject({ state: 'running' });
    expect(status.items.find((i) => i.key === 's.batch-a')?.drift).toBeUndefined();
  });

  it('passes spec text through verbatim: backslashes, spaces, quotes, no final newline', async () => {
    const value = '  a\\b \\n $(touch /tmp/strata-pwned) `x` \'q\' "dq" trailing  ';
    const echo = item('s.echo', 'process', { start: 'printf "%s" "$V" > "$STATE_DIR/v"; exec sleep 30', env: { V: value }, ready: { command: 'test -f "$STATE_DIR/v"', timeout: 5 } });
    const r = await rt.activate(echo);
    started.push(echo);
    expect(r.stderr).toBe('');
    expect(readFileSync(join(dr, 'state/s.echo/v'), 'utf8')).toBe(value);
    expect(existsSync('/tmp/strata-pwned')).toBe(false);
  });

  it('holds a lock for one owner at a time', async () => {
    await rt.lock('alice:1:a');
    await rt.lock('alice:1:a');
    await expect(rt.lock('bob:2:b')).rejects.toMatchObject({ code: 'MACHINE_LOCKED' });
    await expect(rt.unlock('bob:2:b')).rejects.toThrow(/held by alice/);
    await rt.unlock('alice:1:a');
    await rt.lock('bob:2:b');
    await rt.unlock('bob:2:b');
  });

  it('records generations and keeps the previous one', async () => {
    const rec = (g: number) => ({ deployment: 'd', generation: g, manifestHash: `h${g}`, machine: null });
    await rt.commit(1, rec(1));
    await rt.commit(2, rec(2));
    expect((await rt.recorded())?.generation).toBe(2);
    expect((await rt.recorded(1))?.manifestHash).toBe('h1');
    expect(readFileSync(join(dr, 'generations/previous'), 'utf8').trim()).toBe('1');
    expect((await rt.status()).generation).toBe(2);
  });
});
