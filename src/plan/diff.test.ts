import { describe, expect, it } from 'vitest';
import { resolveManifest } from '../manifest/resolve.ts';
import type { ArtifactSource, Manifest } from '../manifest/types.ts';
import { loadModels } from '../model/load.ts';
import { isEmptyPlan, planTransition, type RecordedState } from './diff.ts';
import { renderPlan } from './render.ts';
import type { Plan, Step } from './types.ts';

const ROOT = ['name: hello', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');

const NETWORK = [
  'machines:',
  '  m1: { address: 10.0.0.1, allowedPaths: [/etc/hello] }',
  '  m2: { address: 10.0.0.2 }',
  '  m3: { address: 10.0.0.3 }',
  '',
].join('\n');

const MOTD = ['    files:', '      - { path: /etc/hello/motd, content: "welcome" }', ''].join('\n');

const SERVICES = [
  'services:',
  '  hello-world-server:',
  '    type: process',
  '    artifact: server',
  '    start: node server.js',
  '    ports: { main: 5000 }',
  '  hello-world-client:',
  '    type: process',
  '    artifact: client',
  '    start: node client.js',
  '    ports: { main: 5001 }',
  '    dependsOn: [hello-world-server]',
  '  extra:',
  '    type: process',
  '    artifact: extra',
  '    start: node extra.js',
  '',
].join('\n');

const DIST = ['distribution:', '  hello-world-server: m2', '  hello-world-client: [m1, m3]', '  extra: m2', ''].join('\n');

const hashArtifact = (s: ArtifactSource) => {
  const id = s.kind === 'inline' ? `inline:${s.content}` : s.path;
  return { hash: `hash(${id})`, size: id.length, files: 1 };
};

function manifest(over: { network?: string; services?: string; distribution?: string; hash?: typeof hashArtifact } = {}): Manifest {
  const files: Record<string, string> = {
    '/repo/strata.yaml': ROOT,
    '/repo/network.yaml': over.network ?? NETWORK,
    '/repo/services.yaml': over.services ?? SERVICES,
    '/repo/distribution.yaml': over.distribution ?? DIST,
  };
  return resolveManifest(loadModels('/repo/strata.yaml', { readText: (p) => files[p] }), over.hash ?? hashArtifact);
}

const recorded = (m: Manifest, generation = 1): RecordedState => ({ generation, manifest: m });

/** `action machine/name` of each step, in order. */
const order = (p: Plan) => p.steps.map((s) => `${s.action} ${s.machine}/${s.item.name}`);

function stepOf(p: Plan, action: Step['action'], machine: string, name: string): Step {
  const s = p.steps.find((x) => x.action === action && x.machine === machine && x.item.name === name);
  if (!s) throw new Error(`no step ${action} ${machine}/${name} in ${JSON.stringify(order(p))}`);
  return s;
}

const indexOf = (p: Plan, s: Step) => p.steps.indexOf(s);

describe('planTransition', () => {
  it('activates everything in dependency order on a first deployment', () => {
    const desired = manifest();
    const p = planTransition(undefined, desired);
    expect(p.format).toBe('strata-plan/1');
    expect(p.deployment).toBe('hello');
    expect(p.basis).toEqual({ generation: null, manifestHash: null });
    expect(p.generation).toBe(1);
    expect(p.desired).toBe(desired);
    expect(p.steps.every((s) => s.action === 'activate' && s.phase === 'activate')).toBe(true);
    expect(p.steps).toHaveLength(4);
    expect(p.steps.map((s) => s.id)).toEqual(['1', '2', '3', '4']);

    const server = stepOf(p, 'activate', 'm2', 'hello-world-server');
    for (const m of ['m1', 'm3']) {
      const client = stepOf(p, 'activate', m, 'hello-world-client');
      expect(indexOf(p, client)).toBeGreaterThan(indexOf(p, server));
      expect(client.after).toEqual([server.id]);
    }
    expect(server.after).toEqual([]);
    expect(stepOf(p, 'activate', 'm2', 'extra').after).toEqual([]);

    expect(p.changes.every((c) => c.action === 'add')).toBe(true);
    expect(p.changes.map((c) => `${c.name}@${c.machine}`)).toEqual(['extra@m2', 'hello-world-client@m1', 'hello-world-client@m3', 'hello-world-server@m2']);
    expect(p.machines).toEqual(['m1', 'm2', 'm3']);
    expect(isEmptyPlan(p)).toBe(false);
  });

  it('plans nothing for an identical manifest', () => {
    const m = manifest();
    const p = planTransition(recorded(m, 7), manifest());
    expect(p.steps).toEqual([]);
    expect(p.changes).toEqual([]);
    expect(p.uploads).toEqual({});
    expect(p.machines).toEqual([]);
    expect(p.basis).toEqual({ generation: 7, manifestHash: m.hash });
    expect(p.generation).toBe(8);
    expect(isEmptyPlan(p)).toBe(true);
  });

  it('is not empty for a first deployment of nothing-to-do models', () => {
    // no services, no infrastructure: no steps, but nothing is recorded yet either
    const none = manifest({ services: 'services: {}\n', distribution: 'distribution: {}\n' });
    const p = planTransition(undefined, none);
    expect(p.steps).toEqual([]);
    expect(isEmptyPlan(p)).toBe(false);
  });

  describe('moving the server', () => {
    const before = manifest();
    const after = manifest({ distribution: DIST.replace('hello-world-server: m2', 'hello-world-server: m3') });
    const p = planTransition(recorded(before, 4), after);

    it('records the basis and the next generation', () => {
      expect(p.basis).toEqual({ generation: 4, manifestHash: before.hash });
      expect(p.generation).toBe(5);
      expect(isEmptyPlan(p)).toBe(false);
    });

    it('deactivates the dependents before the dependency, in the deactivate phase', () => {
      const oldServer = stepOf(p, 'deactivate', 'm2', 'hello-world-server');
      expect(oldServer.phase).toBe('deactivate');
      expect(oldServer.item).toBe(before.machines.m2!.items.find((i) => i.key === 's.hello-world-server'));
      const clients = ['m1', 'm3'].map((m) => stepOf(p, 'deactivate', m, 'hello-world-client'));
      for (const c of clients) {
        expect(c.phase).toBe('deactivate');
        expect(indexOf(p, c)).toBeLessThan(indexOf(p, oldServer));
        // the recorded version is deactivated
        expect(c.item.hash).toBe(before.machines[c.machine]!.items.find((i) => i.key === 's.hello-world-client')!.hash);
      }
      expect([...oldServer.after].sort()).toEqual(clients.map((c) => c.id).sort());
    });

    it('activates dependencies first, every deactivation before any activation', () => {
      const newServer = stepOf(p, 'activate', 'm3', 'hello-world-server');
      expect(newServer.phase).toBe('activate');
      for (const m of ['m1', 'm3']) {
        const c = stepOf(p, 'activate', m, 'hello-world-client');
        expect(c.after).toEqual([newServer.id]);
        expect(indexOf(p, c)).toBeGreaterThan(indexOf(p, newServer));
      }
      const lastDeactivate = Math.max(...p.steps.flatMap((s, i) => (s.action === 'deactivate' ? [i] : [])));
      const firstActivate = p.steps.findIndex((s) => s.action === 'activate');
      expect(lastDeactivate).toBeLessThan(firstActivate);
      expect(order(p)).toHaveLength(6);
      // the untouched service is not in the plan
      expect(p.steps.some((s) => s.item.name === 'extra')).toBe(false);
    });

    it('classifies the server as moved and the clients as upgraded because of the move', () => {
      const move = p.changes.filter((c) => c.action === 'move');
      expect(move).toEqual([{ action: 'move', layer: 'service', name: 'hello-world-server', machine: 'm3', from: 'm2', reasons: ['moved from m2 to m3'] }]);
      const upgrades = p.changes.filter((c) => c.action === 'upgrade');
      expect(upgrades.map((c) => c.machine).sort()).toEqual(['m1', 'm3']);
      for (const u of upgrades) {
        expect(u.name).toBe('hello-world-client');
        expect(u.reasons).toEqual(['address of hello-world-server changed']);
      }
      expect(p.changes).toHaveLength(3);
    });

    it('uploads only what a machine did not use before', () => {
      // m3 runs a client already, but not the server; m1 keeps its client artifact
      expect(p.uploads).toEqual({ m3: [{ hash: 'hash(/repo/server)', size: '/repo/server'.length }] });
      expect(p.machines).toEqual(['m1', 'm2', 'm3']);
    });
  });

  it('removes a service that left the models with a deactivate step', () => {
    const before = manifest();
    const after = manifest({ distribution: DIST.replace('  extra: m2\n', '') });
    const p = planTransition(recorded(before), after);
    expect(p.changes).toEqual([{ action: 'remove', layer: 'service', name: 'extra', machine: 'm2', reasons: ['no longer in the models'] }]);
    expect(p.steps).toHaveLength(1);
    expect(p.steps[0]).toMatchObject({ id: '1', phase: 'deactivate', action: 'deactivate', machine: 'm2', after: [] });
    expect(p.steps[0]!.item.name).toBe('extra');
    expect(p.uploads).toEqual({});
    expect(p.machines).toEqual(['m2']);
  });

  it('upgrades a service whose artifact changed, and only that one', () => {
    const before = manifest();
    const after = manifest({ hash: (s) => (s.kind === 'dir' && s.path === '/repo/extra' ? { hash: 'new-extra', size: 5, files: 1 } : hashArtifact(s)) });
    const p = planTransition(recorded(before), after);
    expect(p.changes).toEqual([{ action: 'upgrade', layer: 'service', name: 'extra', machine: 'm2', reasons: ['artifact changed'] }]);
    expect(order(p)).toEqual(['deactivate m2/extra', 'activate m2/extra']);
    expect(p.uploads).toEqual({ m2: [{ hash: 'new-extra', size: 5 }] });
  });

  it('runs infrastructure steps before service steps', () => {
    const before = manifest();
    const network = NETWORK.replace('  m1: { address: 10.0.0.1, allowedPaths: [/etc/hello] }', `  m1:\n    address: 10.0.0.1\n    allowedPaths: [/etc/hello]\n${MOTD}`);
    const after = manifest({ network, distribution: DIST.replace('hello-world-server: m2', 'hello-world-server: m3') });
    const p = planTransition(recorded(before), after);
    const infra = p.steps.filter((s) => s.item.layer === 'infrastructure');
    expect(infra).toHaveLength(1);
    expect(infra[0]).toMatchObject({ id: '1', phase: 'infrastructure', action: 'activate', machine: 'm1' });
    expect(infra[0]!.item.name).toBe('/etc/hello/motd');
    expect(p.steps.slice(1).every((s) => s.item.layer === 'service')).toBe(true);
    const phases = p.steps.map((s) => s.phase);
    expect(phases).toEqual(['infrastructure', 'deactivate', 'deactivate', 'deactivate', 'activate', 'activate', 'activate']);
    expect(p.changes[0]).toMatchObject({ action: 'add', layer: 'infrastructure', name: '/etc/hello/motd', machine: 'm1' });
    expect(p.uploads.m1).toEqual([{ hash: 'hash(inline:welcome)', size: 'inline:welcome'.length }]);
  });

  it('replaces a changed infrastructure item within its phase and removes old ones last', () => {
    const withMotd = (text: string) => NETWORK.replace('  m1: { address: 10.0.0.1, allowedPaths: [/etc/hello] }', `  m1:\n    address: 10.0.0.1\n    allowedPaths: [/etc/hello]\n${text}`);
    const before = manifest({ network: withMotd(MOTD) });
    const changed = manifest({ network: withMotd(MOTD.replace('welcome', 'hello again')) });
    const p = planTransition(recorded(before), changed);
    expect(p.steps.map((s) => `${s.phase}:${s.action}`)).toEqual(['infrastructure:deactivate', 'infrastructure:activate']);
    expect(p.steps[1]!.after).toEqual(['1']);
    expect(p.changes).toEqual([{ action: 'upgrade', layer: 'infrastructure', name: '/etc/hello/motd', machine: 'm1', reasons: ['artifact changed'] }]);

    // the file disappears and a service is added: the service first, the file in cleanup
    const gone = manifest({ distribution: DIST.replace('extra: m2', 'extra: [m1, m2]') });
    const q = planTransition(recorded(before), gone);
    expect(q.steps.map((s) => `${s.phase}:${s.action} ${s.machine}/${s.item.name}`)).toEqual(['activate:activate m1/extra', 'cleanup:deactivate m1//etc/hello/motd']);
    expect(q.changes.map((c) => `${c.action} ${c.layer} ${c.name}`)).toEqual(['remove infrastructure /etc/hello/motd', 'add service extra']);
  });

  it('does not upload an artifact the machine already has, even for a newly placed service', () => {
    const before = manifest();
    // the server also runs on m3 now; m3 never had the server artifact, m2 keeps it
    const after = manifest({ distribution: DIST.replace('hello-world-server: m2', 'hello-world-server: [m2, m3]') });
    const p = planTransition(recorded(before), after);
    expect(Object.keys(p.uploads)).toEqual(['m3']);
    // and a second client on m2, whose artifact m2 has never had, needs an upload on m2
    const again = manifest({ distribution: DIST.replace('hello-world-client: [m1, m3]', 'hello-world-client: [m1, m2, m3]') });
    const q = planTransition(recorded(before), again);
    expect(q.uploads).toEqual({ m2: [{ hash: 'hash(/repo/client)', size: '/repo/client'.length }] });
  });
});

// ---------------------------------------------------------------------------- stateful services

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
