import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapshotStore, sidecarOf } from './snapshots.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-snapshots-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const meta = (machine: string, generation = 3) => ({ deployment: 'shop', service: 'app-db', machine, item: 's.app-db', module: 'postgresql-database', generation, reason: 'move' as const });

describe('SnapshotStore', () => {
  const store = new SnapshotStore(dir);

  it('stores a snapshot with a sidecar, named by time, generation and machine, readable by the owner only', () => {
    const s = store.save(meta('db1'), Buffer.from('PGDMP bytes'), new Date('2026-01-02T03:04:05.678Z'));
    expect(s.file).toBe(join(dir, 'snapshots/shop/app-db/20260102T030405.678Z-gen3-db1.snap'));
    expect(readFileSync(s.file, 'utf8')).toBe('PGDMP bytes');
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    const side = JSON.parse(readFileSync(sidecarOf(s.file), 'utf8'));
    expect(side).toMatchObject({ format: 'strata-snapshot/1', machine: 'db1', item: 's.app-db', size: 11, createdAt: '2026-01-02T03:04:05.678Z' });
    expect(side.sha256).toMatch(/^[0-9a-f]{64}$/);
    // the same moment twice does not overwrite
    const again = store.save(meta('db1'), Buffer.from('other'), new Date('2026-01-02T03:04:05.678Z'));
    expect(again.file).not.toBe(s.file);
    expect(store.read(s.file).bytes.toString()).toBe('PGDMP bytes');
  });

  it('lists newest first, finds the latest, and prunes to the newest K except protected ones', () => {
    for (let i = 0; i < 5; i++) store.save(meta(`db${i % 2 ? 2 : 1}`, 10 + i), Buffer.from(`gen ${10 + i}`), new Date(Date.UTC(2026, 1, 1, 0, 0, i)));
    const all = store.list('shop', 'app-db');
    expect(all).toHaveLength(7);
    expect(all[0]!.meta!.generation).toBe(14);
    expect(store.latest('shop', 'app-db')!.meta!.generation).toBe(14);
    expect(store.latest('shop', 'app-db', 'db2')!.meta!.generation).toBe(13);
    const oldest = all[all.length - 1]!.file;
    const removed = store.prune('shop', 'app-db', 3, new Set([oldest]));
    expect(removed).toHaveLength(3);
    expect(store.list('shop', 'app-db').map((s) => s.meta!.generation)).toEqual([14, 13, 12, 3]);
    expect(readdirSync(store.serviceDir('shop', 'app-db'))).toHaveLength(8);
  });

  it('refuses bytes that do not match their sidecar', () => {
    const s = store.latest('shop', 'app-db')!;
    writeFileSync(s.file, 'gen');
    expect(() => store.read(s.file)).toThrow(/is 3 bytes but its sidecar .* records 6: it was truncated/);
    writeFileSync(s.file, 'tampered');
    expect(() => store.read(s.file)).toThrow(/is 8 bytes but its sidecar .* records 6: it was appended to/);
    writeFileSync(s.file, 'gen 1X');
    expect(() => store.read(s.file)).toThrow(/does not match its sidecar .*\(sha256 [0-9a-f]{12}, recorded [0-9a-f]{12}\)/);
    expect(() => store.read(join(dir, 'nope.snap'))).toThrow(/the snapshot .*nope.snap does not exist; refusing to restore it/);
  });

  it('restores nothing without a valid sidecar, nor from a sidecar that is not a regular file', () => {
    const s = store.save(meta('db1'), Buffer.from('bytes'));
    const side = sidecarOf(s.file);
    const good = readFileSync(side, 'utf8');
    rmSync(side);
    expect(() => store.read(s.file)).toThrow(expect.objectContaining({ code: 'SNAPSHOT_SIDECAR_MISSING', message: expect.stringMatching(/the sidecar .*\.json .* does not exist/) }));
    execFileSync('mkfifo', [side]);
    expect(() => store.read(s.file)).toThrow(expect.objectContaining({ code: 'SNAPSHOT_SIDECAR_INVALID', message: expect.stringMatching(/is a FIFO/) }));
    rmSync(side);
    for (const [text, why] of [
      ['{', /not valid JSON/],
      ['[]', /expected a JSON object/],
      [good.replace('"strata-snapshot/1"', '"other"'), /format: expected "strata-snapshot\/1"/],
      [good.replace(/"sha256": "[0-9a-f]+"/, '"sha256": "abc"'), /sha256: expected 64 lowercase hex digits/],
      [good.replace('"size": 5', '"size": -1'), /size: expected a whole number/],
      [good.replace('"service": "app-db"', '"service": "../x"'), /service: expected a name/],
    ] as const) {
      writeFileSync(side, text);
      expect(() => store.read(s.file)).toThrow(why);
    }
    writeFileSync(side, good);
    expect(store.read(s.file).bytes.toString()).toBe('bytes');
  });

  it('refuses a name that is not a model name before it becomes a path', () => {
    for (const bad of ['../x', '', '/abs', 'a/b', '..', 'a\u0000b']) {
      expect(() => store.serviceDir(bad, 'app-db')).toThrow(expect.objectContaining({ code: 'NAME_INVALID', message: expect.stringMatching(/is not a valid deployment name/) }));
      expect(() => store.list('shop', bad)).toThrow(/is not a valid service name/);
      expect(() => store.save({ ...meta(bad), machine: bad }, Buffer.from('x'))).toThrow(/is not a valid machine name/);
    }
  });
});

describe('SnapshotStore, a snapshot received into a staging file', () => {
  it('moves it into place with the size and sha256 given, and never lists the staging file', () => {
    const store = new SnapshotStore(join(dir, 'staged'));
    const staging = store.stagingFile('shop', 'app-db');
    expect(staging.startsWith(join(dir, 'staged/snapshots/shop/app-db/.incoming-'))).toBe(true);
    writeFileSync(staging, 'streamed bytes', { mode: 0o600 });
    expect(store.list('shop', 'app-db')).toEqual([]);
    const sha256 = execFileSync('sha256sum', [staging], { encoding: 'utf8' }).split(' ')[0]!;
    const s = store.save(meta('db1'), { path: staging, size: 14, sha256 });
    expect(readdirSync(join(dir, 'staged/snapshots/shop/app-db')).sort()).toEqual([s.file.split('/').pop()!.replace(/\.snap$/, '.json'), s.file.split('/').pop()!].sort());
    expect(store.read(s.file)).toMatchObject({ meta: { size: 14, sha256 } });
    expect(store.read(s.file).bytes.toString()).toBe('streamed bytes');
  });

  it('removes the staging files of processes that are gone, never one of a live process', () => {
    const store = new SnapshotStore(join(dir, 'abandoned'));
    const first = store.stagingFile('shop', 'app-db');
    writeFileSync(first, 'mine, still arriving');
    const sdir = join(dir, 'abandoned/snapshots/shop/app-db');
    // PID 2**22 + 1 is above Linux's pid_max: that process cannot exist.
    writeFileSync(join(sdir, `.incoming-${2 ** 22 + 1}-abcdef.part`), 'left by a killed controller');
    store.stagingFile('shop', 'app-db');
    expect(readdirSync(sdir)).toEqual([first.split('/').pop()]);
  });
});
