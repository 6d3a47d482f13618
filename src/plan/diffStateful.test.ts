import { describe, expect, it } from 'vitest';
import type { RecordedState } from '../manifest/recorded.ts';
import { planTransition } from './diff.ts';
import { renderPlan } from './render.ts';
import { indexOf, manifest, order, recorded, stepOf } from '../../test/support/diffFixtures.ts';

describe('planTransition: stateful services', () => {
  const PG_NETWORK = [
    'machines:',
    '  m1:',
    '    address: 10.0.0.1',
    '    containers:',
    '      pg: { properties: { port: 5432, user: postgres } }',
    '      pg-new: { properties: { port: 5433 } }',
    '      shared: { properties: { host: db.example.org, port: 6432 } }',
    '  m2:',
    '    address: 10.0.0.2',
    '    containers:',
    '      pg: { properties: { port: 5432 } }',
    '      shared: { properties: { host: db.example.org, port: 6432 } }',
    '  m3: { address: 10.0.0.3 }',
    '',
  ].join('\n');
  const PG_SERVICES = [
    'services:',
    '  app-db:',
    '    type: postgresql-database',
    '    artifact: db',
    '  api:',
    '    type: process',
    '    artifact: api',
    '    start: node api.js',
    '    ports: { main: 8080 }',
    '    dependsOn: [app-db]',
    '  front:',
    '    type: process',
    '    start: node front.js',
    '    dependsOn: [api]',
    '  cache:',
    '    type: process',
    '    start: ./cache',
    '    stateful: true',
    '  scratch:',
    '    type: process',
    '    start: ./scratch',
    '',
  ].join('\n');
  const PG_DIST = ['distribution:', '  app-db: { machine: m1, container: pg }', '  api: m3', '  front: m3', '  cache: m1', '  scratch: m1', ''].join('\n');
  const pg = (distribution = PG_DIST, services = PG_SERVICES) => manifest({ network: PG_NETWORK, services, distribution });
  const moveDb = (to: string) => PG_DIST.replace('app-db: { machine: m1, container: pg }', `app-db: ${to}`);
  const base = pg();

  it('resolves a database: its server from the container, stateful by default, its address for dependents', () => {
    const db = base.machines.m1!.items.find((i) => i.key === 's.app-db')!;
    expect(db).toMatchObject({ module: 'postgresql-database', container: 'pg', stateful: true });
    expect(db.spec).toMatchObject({ database: 'app_db', env: { PGHOST: '10.0.0.1', PGPORT: '5432', PGUSER: 'postgres', PGDATABASE: 'app_db' } });
    const api = base.machines.m3!.items.find((i) => i.key === 's.api')!;
    expect((api.spec as { env: Record<string, string> }).env).toMatchObject({ APP_DB_HOST: '10.0.0.1', APP_DB_PORT: '5432', APP_DB_USER: 'postgres', APP_DB_DATABASE: 'app_db', APP_DB_ADDRESSES: '10.0.0.1:5432' });
    expect(base.machines.m1!.items.find((i) => i.key === 's.scratch')!.stateful).toBe(false);
  });

  describe('moving the database to another machine', () => {
    const p = planTransition(recorded(base), pg(moveDb('{ machine: m2, container: pg }')));
    const snapshot = stepOf(p, 'snapshot', 'm1', 'app-db');
    const oldDb = stepOf(p, 'deactivate', 'm1', 'app-db');
    const newDb = stepOf(p, 'activate', 'm2', 'app-db');
    const restore = stepOf(p, 'restore', 'm2', 'app-db');

    it('snapshots the old instance after its dependents stopped and before it is deactivated', () => {
      const oldApi = stepOf(p, 'deactivate', 'm3', 'api');
      expect(snapshot.phase).toBe('deactivate');
      expect(snapshot.item).toBe(base.machines.m1!.items.find((i) => i.key === 's.app-db'));
      expect(snapshot.after).toEqual([oldApi.id]);
      expect(oldDb.after).toEqual([oldApi.id, snapshot.id].sort((a, b) => Number(a) - Number(b)));
      expect(indexOf(p, snapshot)).toBeLessThan(indexOf(p, oldDb));
    });

    it('restores into the new instance after it is activated, and its dependents start after the restore', () => {
      expect(restore.phase).toBe('activate');
      expect(restore.source).toBe(snapshot.id);
      expect(restore.after).toEqual([newDb.id]);
      expect(restore.item.machine).toBe('m2');
      const api = stepOf(p, 'activate', 'm3', 'api');
      expect(api.after).toEqual([newDb.id, restore.id].sort((a, b) => Number(a) - Number(b)));
      expect(indexOf(p, api)).toBeGreaterThan(indexOf(p, restore));
      // a dependent of the dependent keeps its environment, so it is not touched
      expect(p.steps.some((s) => s.item.name === 'front')).toBe(false);
    });

    it('says the data moves, in the change and in the rendered plan', () => {
      const move = p.changes.find((c) => c.action === 'move')!;
      expect(move).toMatchObject({ name: 'app-db', from: 'm1', machine: 'm2' });
      expect(move.reasons).toEqual(['moved from m1 to m2', 'its data moves: snapshot on m1, restore on m2']);
      const text = renderPlan(p, 'text');
      expect(text).toContain(`${snapshot.id}. [m1] snapshot service app-db after #`);
      expect(text).toContain(`${restore.id}. [m2] restore service app-db from snapshot #${snapshot.id} after #${newDb.id}`);
      expect(text).toContain('Snapshots: app-db m1 → m2');
      expect(renderPlan(p, 'markdown')).toContain('**Snapshots:** app-db m1 → m2');
      expect(JSON.parse(renderPlan(p, 'json'))).toEqual(p);
    });

    it('uploads nothing for the snapshot and restore steps', () => {
      expect(p.steps.filter((s) => s.action === 'snapshot' || s.action === 'restore')).toHaveLength(2);
      expect(p.uploads).toEqual({ m2: [{ hash: 'hash(/repo/db)', size: '/repo/db'.length }] });
    });
  });

  it('snapshots a removed stateful service before its deactivation, and restores nothing', () => {
    const services = PG_SERVICES.replace('    dependsOn: [app-db]\n', '');
    const before = pg(PG_DIST, services);
    const p = planTransition(recorded(before), pg(PG_DIST.replace('  app-db: { machine: m1, container: pg }\n', ''), services));
    expect(order(p)).toEqual(['snapshot m1/app-db', 'deactivate m1/app-db']);
    expect(p.steps[1]!.after).toEqual([p.steps[0]!.id]);
    expect(p.changes).toEqual([{ action: 'remove', layer: 'service', name: 'app-db', machine: 'm1', reasons: ['no longer in the models', 'its data is snapshotted first'] }]);
    expect(renderPlan(p, 'text')).toContain('Snapshots: app-db on m1 (kept in the state directory)');
  });

  it('carries the STATE_DIR of a stateful process that moves, and of no other process', () => {
    const p = planTransition(recorded(base), pg(PG_DIST.replace('cache: m1', 'cache: m2').replace('scratch: m1', 'scratch: m2')));
    expect(order(p)).toEqual(['snapshot m1/cache', 'deactivate m1/cache', 'deactivate m1/scratch', 'activate m2/cache', 'activate m2/scratch', 'restore m2/cache']);
    const restore = stepOf(p, 'restore', 'm2', 'cache');
    expect(restore.source).toBe(stepOf(p, 'snapshot', 'm1', 'cache').id);
    expect(restore.after).toEqual([stepOf(p, 'activate', 'm2', 'cache').id]);
  });

  it('carries a database put into another server on the same machine', () => {
    const p = planTransition(recorded(base), pg(moveDb('{ machine: m1, container: pg-new }')));
    expect(order(p).filter((s) => s.endsWith('app-db'))).toEqual(['snapshot m1/app-db', 'deactivate m1/app-db', 'activate m1/app-db', 'restore m1/app-db']);
    expect(p.changes.find((c) => c.name === 'app-db')!.reasons).toContain('its data moves to the new server: snapshot, restore');
  });

  it('carries nothing when the database stays in the same server (a shared one both machines reach)', () => {
    const before = pg(moveDb('{ machine: m1, container: shared }'));
    const p = planTransition(recorded(before), pg(moveDb('{ machine: m2, container: shared }')));
    expect(p.steps.some((s) => s.action === 'snapshot' || s.action === 'restore')).toBe(false);
    expect(p.changes.find((c) => c.action === 'move')!.reasons).toEqual(['moved from m1 to m2']);
  });

  it('takes no snapshot of a service that is not stateful, or whose upgrade keeps its data in place', () => {
    const services = PG_SERVICES.replace("    start: ./cache\n", "    start: ./cache --fast\n").replace('    artifact: db\n', '    artifact: db\n    stateful: false\n');
    const p = planTransition(recorded(base), pg(moveDb('{ machine: m2, container: pg }'), services));
    expect(p.steps.filter((s) => s.action === 'snapshot' || s.action === 'restore').map((s) => `${s.action} ${s.machine}/${s.item.name}`)).toEqual(['snapshot m1/app-db']);
    expect(order(p)).toContain('deactivate m1/cache');
    expect(order(p)).toContain('activate m1/cache');
  });
  it('restores data lost with an abandoned machine into the instance a plan places elsewhere, and keeps what it does not place pending', () => {
    // m1 was abandoned: its items left the recorded state; cache had a snapshot, app-db none.
    const { m1: _gone, ...rest } = base.machines;
    const abandoned: RecordedState = {
      generation: 2,
      manifest: { ...base, machines: rest, hash: 'without-m1' },
      pendingRestores: [
        { service: 'cache', module: 'process', machine: 'm1', snapshot: { file: '20261204T031000.000Z-gen1-m1.snap', sha256: 'ab', createdAt: '2026-12-04T03:10:00.000Z' } },
        { service: 'app-db', module: 'postgresql-database', machine: 'm1' },
      ],
    };
    const elsewhere = PG_DIST.replace('app-db: { machine: m1, container: pg }', 'app-db: { machine: m2, container: pg }').replace('cache: m1', 'cache: m2').replace('scratch: m1', 'scratch: m2');
    const p = planTransition(abandoned, pg(elsewhere));
    const restore = stepOf(p, 'restore', 'm2', 'cache');
    expect(restore).toMatchObject({ snapshot: '20261204T031000.000Z-gen1-m1.snap', after: [stepOf(p, 'activate', 'm2', 'cache').id] });
    expect(restore.source).toBeUndefined();
    expect(p.steps.some((s) => s.action === 'restore' && s.item.name === 'app-db')).toBe(false);
    expect(p.changes.find((c) => c.name === 'cache')!.reasons).toEqual(['its machine m1 was abandoned', 'its data is restored from the snapshot taken 2026-12-04T03:10:00.000Z']);
    expect(p.changes.find((c) => c.name === 'app-db')!.reasons).toEqual(['its machine m1 was abandoned', 'no snapshot of its data was kept: it starts empty']);
    expect(p.pendingRestores).toBeUndefined();
    expect(p.machines).not.toContain('m1');

    // Not placed anywhere yet (cache left out of the models): still pending, and nothing restored.
    const without = planTransition(abandoned, pg(elsewhere.replace('  cache: m2\n', ''), PG_SERVICES.replace(/  cache:\n(    .*\n)+/, '')));
    expect(without.steps.some((s) => s.action === 'restore')).toBe(false);
    expect(without.pendingRestores).toEqual([abandoned.pendingRestores![0]]);
  });
});
