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
    writeFileSync(s.file, 'tampered');
    expect(() => store.read(s.file)).toThrow(/does not match its sidecar/);
    expect(() => store.read(join(dir, 'nope.snap'))).toThrow(/cannot read the snapshot/);
  });
});
