import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Item } from '../../src/manifest/types.ts';
import { LocalTarget } from '../../src/targets/local.ts';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';

// The runtime's snapshot / restore verbs for a stateful process's STATE_DIR, through the local
// target: the stream carries odd names and binary content, and a damaged one changes nothing.
const base = mkdtempSync(join(tmpdir(), 'strata-rt-state-'));
const root = join(base, 'root');
// The deployment's own directory under the machine's root (the store is shared at root).
const dr = join(root, 'deployments', 'rt');
const rt = new ShellMachineRuntime(new LocalTarget('m1'), root, '127.0.3.9', 'rt');
const proc: Item = {
  key: 's.keeper',
  machine: 'm1',
  layer: 'service',
  name: 'keeper',
  module: 'process',
  spec: { start: 'echo "start $(cat "$STATE_DIR/data/x" 2>/dev/null)" >>"$STATE_DIR/journal"; exec sleep 100000', env: {} },
  dependsOn: [],
  stateful: true,
  hash: 'x',
};
const st = (p = '') => join(dr, 'state/s.keeper', p);
const pid = async () => (await rt.status()).items.find((i) => i.key === 's.keeper')?.pid;

afterAll(async () => {
  await rt.deactivate(proc);
  rmSync(base, { recursive: true, force: true });
});

describe('snapshot and restore of STATE_DIR', () => {
  let snapshot: Buffer;
  const binary = Buffer.from([0, 1, 2, 10, 255, 90, 10, 90]);

  it('snapshots every directory and regular file but the log, in the D/F/Z stream', async () => {
    expect((await rt.activate(proc)).code).toBe(0);
    mkdirSync(st('data/sub dir'), { recursive: true });
    writeFileSync(st('data/x'), 'one\ntwo');
    writeFileSync(st('data/sub dir/bin'), binary);
    writeFileSync(st('data/empty'), '');
    const file = join(base, 'taken.snap');
    const r = await rt.snapshot(proc, file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    snapshot = readFileSync(file);
    expect(r.stdoutFile).toMatchObject({ path: file, size: snapshot.byteLength });
    const text = snapshot.toString('latin1');
    expect(text).toContain('D 0 755 data/sub dir\n');
    expect(text).toContain('F 7 644 data/x\none\ntwo');
    expect(text).toContain(`F 8 644 data/sub dir/bin\n${binary.toString('latin1')}`);
    expect(text).toContain('F 0 644 data/empty\n');
    expect(text).not.toMatch(/ log\n/);
    expect(text.endsWith('Z\n')).toBe(true);
  });

  it('restores it, replacing what changed, and starts the process again on it', async () => {
    const before = await pid();
    writeFileSync(st('data/x'), 'changed');
    writeFileSync(st('data/extra'), 'not in the snapshot');
    const r = await rt.restore(proc, snapshot);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(st('data/x'), 'utf8')).toBe('one\ntwo');
    expect(readFileSync(st('data/sub dir/bin'))).toEqual(binary);
    expect(() => readFileSync(st('data/extra'))).toThrow();
    expect(readFileSync(st('journal'), 'utf8')).toBe('start \nstart one\ntwo\n');
    const after = await pid();
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });

  it('refuses a damaged stream and changes nothing, the process keeps running', async () => {
    const running = await pid();
    const r = await rt.restore(proc, Buffer.from('F 100 644 data/x\nabc'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is damaged; nothing was changed/);
    expect(readFileSync(st('data/x'), 'utf8')).toBe('one\ntwo');
    expect(await pid()).toBe(running);
    const escape = await rt.restore(proc, Buffer.from('F 1 644 ../../evil\nxZ\n'));
    expect(escape.code).toBe(1);
    expect(escape.stderr).toMatch(/unsafe path/);
  });

  it('refuses to snapshot an item that is not active here', async () => {
    const r = await rt.snapshot({ ...proc, key: 's.absent' }, join(base, 'absent.snap'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/s.absent is not active on this machine/);
  });
});
