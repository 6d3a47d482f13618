import { describe, expect, it } from 'vitest';
import { loadModels } from '../model/load.ts';
import type { Models } from '../model/types.ts';
import { hashOf } from './hash.ts';
import { envPrefix } from '../model/names.ts';
import { resolveManifest, type HashArtifact } from './resolve.ts';
import type { ArtifactSource, Item, Manifest, ProcessSpec } from './types.ts';
import { itemId } from './types.ts';

type Files = Record<string, string>;

const ROOT = ['name: shop', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');

const NETWORK = [
  'machines:',
  '  m1:',
  '    address: 10.0.0.1',
  '    allowedPaths: [/etc/app, /srv]',
  '    directories:',
  '      - { path: /srv/data, mode: "0700" }',
  '    files:',
  '      - { path: /etc/app/config.ini, content: "x=1", mode: "0600" }',
  '      - { path: /etc/app/logo.png, source: assets/logo.png }',
  '    daemons:',
  '      postgres:',
  '        start: pg_ctl start',
  '        artifact: pgbin',
  '        ports: { main: 5432 }',
  '        env: { PGDATA: /srv/data }',
  '    containers:',
  '      pg:',
  '        daemon: postgres',
  '        properties: { version: 16, max-conn: 100 }',
  '  m2: { address: 10.0.0.2 }',
  '  m3: { address: 10.0.0.3 }',
  '',
].join('\n');

const SERVICES = [
  'services:',
  '  user-store:',
  '    type: process',
  '    artifact: store',
  '    start: run-store',
  '    ports: { main: 7000, admin: 7001 }',
  '  api:',
  '    type: process',
  '    artifact: api',
  '    start: run-api',
  '    ports: { http: 8080 }',
  '    env: { LOG_LEVEL: debug, RETRIES: 3, VERBOSE: true }',
  '    dependsOn: [user-store]',
  '  metrics:',
  '    type: process',
  '    artifact: metrics',
  '    start: run-metrics',
  '    connectsTo: [api]',
  '  other:',
  '    type: process',
  '    artifact: other',
  '    start: run-other',
  '    ports: { main: 9000 }',
  '  db-client:',
  '    type: process',
  '    artifact: dbc',
  '    start: run-dbc',
  '',
].join('\n');

const DISTRIBUTION = [
  'distribution:',
  '  user-store: m2',
  '  api: m1',
  '  metrics: m3',
  '  other: m2',
  '  db-client: { machine: m1, container: pg }',
  '',
].join('\n');

function models(over: Partial<Record<'network' | 'services' | 'distribution', string>> = {}): Models {
  const files: Files = {
    '/repo/strata.yaml': ROOT,
    '/repo/network.yaml': over.network ?? NETWORK,
    '/repo/services.yaml': over.services ?? SERVICES,
    '/repo/distribution.yaml': over.distribution ?? DISTRIBUTION,
  };
  return loadModels('/repo/strata.yaml', { readText: (p) => files[p] });
}

/** A pure fake: the hash names the source, unless overridden for a path. */
function fakeHasher(overrides: Record<string, string> = {}): HashArtifact & { calls: ArtifactSource[] } {
  const calls: ArtifactSource[] = [];
  const fn = (s: ArtifactSource) => {
    calls.push(s);
    const id = s.kind === 'inline' ? `inline:${s.name}:${s.content}:${s.mode}` : `${s.kind}:${s.path}`;
    const hash = s.kind !== 'inline' && overrides[s.path] !== undefined ? overrides[s.path]! : `H(${id})`;
    return { hash, size: id.length, files: 1 };
  };
  return Object.assign(fn, { calls });
}

const resolve = (m: Models, h: HashArtifact = fakeHasher()) => resolveManifest(m, h);

function item(m: Manifest, machine: string, key: string): Item {
  const found = m.machines[machine]?.items.find((i) => i.key === key);
  if (!found) throw new Error(`no item ${machine}/${key}`);
  return found;
}

const envOf = (i: Item) => (i.spec as ProcessSpec).env;

function hashes(m: Manifest): Map<string, string> {
  return new Map(Object.values(m.machines).flatMap((mm) => mm.items.map((i) => [itemId(i), i.hash] as const)));
}

/** Ids whose hash differs, appeared or disappeared between two manifests. */
function changedIds(a: Manifest, b: Manifest): string[] {
  const ha = hashes(a);
  const hb = hashes(b);
  return [...new Set([...ha.keys(), ...hb.keys()])].filter((id) => ha.get(id) !== hb.get(id)).sort();
}

describe('resolveManifest', () => {
  it('is deterministic: the same models give byte-identical JSON', () => {
    const a = JSON.stringify(resolve(models()));
    const b = JSON.stringify(resolve(models()));
    expect(a).toBe(b);
    const m = resolve(models());
    expect(m.hash).toBe(hashOf({ machines: m.machines }));
    expect(m.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on the order of machines, services and placements in the files', () => {
    const reorder = (text: string, header: string) => {
      // split into top-level entries (two-space indented keys) and reverse them
      const [, ...lines] = text.trimEnd().split('\n');
      const blocks: string[][] = [];
      for (const l of lines) {
        if (/^ {2}\S/.test(l)) blocks.push([l]);
        else blocks[blocks.length - 1]!.push(l);
      }
      return [header, ...blocks.reverse().flat(), ''].join('\n');
    };
    const reordered = models({ network: reorder(NETWORK, 'machines:'), services: reorder(SERVICES, 'services:'), distribution: reorder(DISTRIBUTION, 'distribution:') });
    expect(Object.keys(reordered.services)[0]).toBe('db-client'); // the reversal took effect
    expect(JSON.stringify(resolve(reordered))).toBe(JSON.stringify(resolve(models())));
  });

  it('hashes equally when environment keys come in another order', () => {
    const swapped = SERVICES.replace('env: { LOG_LEVEL: debug, RETRIES: 3, VERBOSE: true }', 'env: { VERBOSE: true, RETRIES: 3, LOG_LEVEL: debug }');
    const a = resolve(models());
    const b = resolve(models({ services: swapped }));
    expect(item(b, 'm1', 's.api').hash).toBe(item(a, 'm1', 's.api').hash);
    expect(b.hash).toBe(a.hash);
    // …and serialises byte-equal, so recorded manifests and JSON plans do not churn.
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('lists machines and each machine items sorted, with a target per machine', () => {
    const m = resolve(models());
    expect(m.version).toBe(1);
    expect(m.deployment).toBe('shop');
    expect(Object.keys(m.machines)).toEqual(['m1', 'm2', 'm3']);
    for (const mm of Object.values(m.machines)) {
      const keys = mm.items.map((i) => i.key);
      expect(keys).toEqual([...keys].sort());
    }
    expect(m.machines.m2!.items.map((i) => i.key)).toEqual(['s.other', 's.user-store']);
    expect(m.machines.m2!.target).toEqual({ kind: 'ssh', host: '10.0.0.2', port: 22, user: 'root', root: '/var/lib/strata' });
    expect(m.machines.m2!.address).toBe('10.0.0.2');
  });

  it('gives a dependent <DEP>_HOST and <DEP>_PORT, the name upper-cased with "-" as "_"', () => {
    expect(envPrefix('user-store')).toBe('USER_STORE');
    const env = envOf(item(resolve(models()), 'm1', 's.api'));
    expect(env).toMatchObject({
      USER_STORE_HOST: '10.0.0.2',
      USER_STORE_PORT: '7000',
      USER_STORE_PORT_MAIN: '7000',
      USER_STORE_PORT_ADMIN: '7001',
      USER_STORE_ADDRESSES: '10.0.0.2:7000',
    });
    // its own address and ports
    expect(env).toMatchObject({ HOST: '10.0.0.1', PORT: '8080', PORT_HTTP: '8080', STRATA_SERVICE: 'api', STRATA_MACHINE: 'm1' });
    // model env values become strings
    expect(env).toMatchObject({ LOG_LEVEL: 'debug', RETRIES: '3', VERBOSE: 'true' });
    // a service that depends on nothing gets no dependency address
    expect(Object.keys(envOf(item(resolve(models()), 'm2', 's.user-store'))).filter((k) => k.endsWith('_HOST'))).toEqual([]);
  });

  it('orders a dependent after its dependency through dependsOn item ids', () => {
    const m = resolve(models());
    expect(item(m, 'm1', 's.api').dependsOn).toEqual(['m2/s.user-store']);
    // connectsTo gives no ordering
    expect(item(m, 'm3', 's.metrics').dependsOn).toEqual([]);
  });

  it('lists every instance of a dependency in <DEP>_ADDRESSES, the first machine by name as <DEP>_HOST', () => {
    const m = resolve(models({ distribution: DISTRIBUTION.replace('user-store: m2', 'user-store: [m3, m2]') }));
    const env = envOf(item(m, 'm1', 's.api'));
    expect(env.USER_STORE_HOST).toBe('10.0.0.2');
    expect(env.USER_STORE_ADDRESSES).toBe('10.0.0.2:7000,10.0.0.3:7000');
    expect(item(m, 'm1', 's.api').dependsOn).toEqual(['m2/s.user-store', 'm3/s.user-store']);
  });

  it('injects the address of a connectsTo service too', () => {
    const env = envOf(item(resolve(models()), 'm3', 's.metrics'));
    expect(env).toMatchObject({ API_HOST: '10.0.0.1', API_PORT: '8080', API_PORT_HTTP: '8080', API_ADDRESSES: '10.0.0.1:8080' });
  });

  it('changes the hashes of the moved server and its dependents, and nothing else', () => {
    const before = resolve(models());
    const after = resolve(models({ distribution: DISTRIBUTION.replace('user-store: m2', 'user-store: m3') }));
    expect(changedIds(before, after)).toEqual(['m1/s.api', 'm2/s.user-store', 'm3/s.user-store']);
    expect(envOf(item(after, 'm1', 's.api')).USER_STORE_HOST).toBe('10.0.0.3');
    expect(after.hash).not.toBe(before.hash);
    // the moved item differs only by where it runs
    const from = item(before, 'm2', 's.user-store');
    const to = item(after, 'm3', 's.user-store');
    expect(to.artifact).toBe(from.artifact);
    expect(envOf(to)).toMatchObject({ HOST: '10.0.0.3', STRATA_MACHINE: 'm3' });
  });

  it('changes only the items of the service whose artifact changed', () => {
    const before = resolve(models(), fakeHasher());
    const after = resolve(models(), fakeHasher({ '/repo/api': 'NEW-API-HASH' }));
    expect(changedIds(before, after)).toEqual(['m1/s.api']);
    expect(item(after, 'm1', 's.api').artifact).toBe('NEW-API-HASH');
    expect(after.artifacts['NEW-API-HASH']).toMatchObject({ kind: 'dir', path: '/repo/api', hash: 'NEW-API-HASH' });
    expect(after.artifacts[item(before, 'm1', 's.api').artifact!]).toBeUndefined();
  });

  it('changes the dependents when the dependency gets another port', () => {
    const before = resolve(models());
    const after = resolve(models({ services: SERVICES.replace('ports: { main: 7000, admin: 7001 }', 'ports: { main: 7100, admin: 7001 }') }));
    expect(changedIds(before, after)).toEqual(['m1/s.api', 'm2/s.user-store']);
    expect(envOf(item(after, 'm1', 's.api')).USER_STORE_PORT).toBe('7100');
  });

  it('turns machine directories, files and daemons into infrastructure items', () => {
    const h = fakeHasher();
    const m = resolve(models(), h);
    const infra = m.machines.m1!.items.filter((i) => i.layer === 'infrastructure');
    expect(infra.map((i) => i.module).sort()).toEqual(['directory', 'file', 'file', 'process']);
    expect(m.machines.m2!.items.every((i) => i.layer === 'service')).toBe(true);

    const dir = infra.find((i) => i.module === 'directory')!;
    expect(dir).toMatchObject({ name: '/srv/data', machine: 'm1', spec: { path: '/srv/data', mode: '700', allowed: ['/etc/app', '/srv'] }, dependsOn: [] });
    expect(dir.key).toMatch(/^dir\.[0-9a-f]{16}$/);

    const config = infra.find((i) => i.name === '/etc/app/config.ini')!;
    expect(config).toMatchObject({ module: 'file', spec: { path: '/etc/app' }, dependsOn: [itemId(dir)] });
    expect(config.key).toMatch(/^f\.[0-9a-f]{16}$/);
    expect(m.artifacts[config.artifact!]).toMatchObject({ kind: 'inline', name: 'config.ini', content: 'x=1', mode: '600' });

    const logo = infra.find((i) => i.name === '/etc/app/logo.png')!;
    expect(m.artifacts[logo.artifact!]).toMatchObject({ kind: 'file', path: '/repo/assets/logo.png', name: 'logo.png', mode: '644' });

    const daemon = item(m, 'm1', 'd.postgres');
    expect(daemon).toMatchObject({ layer: 'infrastructure', module: 'process', name: 'postgres' });
    expect(daemon.spec).toMatchObject({ start: 'pg_ctl start', env: { PGDATA: '/srv/data', HOST: '10.0.0.1', PORT: '5432', PORT_MAIN: '5432' } });
    expect(m.artifacts[daemon.artifact!]).toMatchObject({ kind: 'dir', path: '/repo/pgbin' });
    expect([...daemon.dependsOn].sort()).toEqual([itemId(dir), itemId(config), itemId(logo)].sort());

    // every artifact was hashed through the injected function, nothing else
    expect(h.calls.map((c) => (c.kind === 'inline' ? `inline:${c.name}` : c.path)).sort()).toEqual(
      ['/repo/api', '/repo/assets/logo.png', '/repo/dbc', '/repo/metrics', '/repo/other', '/repo/pgbin', '/repo/store', 'inline:config.ini'].sort(),
    );
    expect(Object.keys(m.artifacts)).toEqual(Object.keys(m.artifacts).sort());
  });

  it('changes only the file item when a machine file content changes', () => {
    const before = resolve(models());
    const after = resolve(models({ network: NETWORK.replace('content: "x=1"', 'content: "x=2"') }));
    const changed = changedIds(before, after);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatch(/^m1\/f\./);
    expect(item(after, 'm1', changed[0]!.slice(3)).name).toBe('/etc/app/config.ini');
  });

  it('passes container properties to the service env and orders it after the container daemon', () => {
    const m = resolve(models());
    const dbc = item(m, 'm1', 's.db-client');
    expect(dbc.container).toBe('pg');
    expect(envOf(dbc)).toMatchObject({ CONTAINER: 'pg', CONTAINER_VERSION: '16', CONTAINER_MAX_CONN: '100' });
    expect(dbc.dependsOn).toEqual(['m1/d.postgres']);
    // no container: no container variables
    expect(Object.keys(envOf(item(m, 'm1', 's.api'))).some((k) => k.startsWith('CONTAINER'))).toBe(false);
  });

  it('changes a contained service when its container properties change', () => {
    const before = resolve(models());
    const after = resolve(models({ network: NETWORK.replace('version: 16', 'version: 17') }));
    expect(changedIds(before, after)).toEqual(['m1/s.db-client']);
  });

  it('gives file services a path spec and local machines a local target', () => {
    const network = 'machines:\n  box: { target: local, address: 127.0.0.5, allowedPaths: [/srv/www] }\n';
    const services = 'services:\n  site:\n    type: file\n    artifact: site\n    path: /srv/www/site\n    stateful: true\n';
    const m = resolve(models({ network, services, distribution: 'distribution:\n  site: box\n' }));
    expect(m.machines.box!.target).toEqual({ kind: 'local' });
    expect(item(m, 'box', 's.site')).toMatchObject({ module: 'file', spec: { path: '/srv/www/site', allowed: ['/srv/www'] }, stateful: true, dependsOn: [] });
  });

  it('resolves a ready port name to its number', () => {
    const services = SERVICES.replace('    ports: { http: 8080 }\n', '    ports: { http: 8080 }\n    ready: { port: http }\n');
    const spec = item(resolve(models({ services })), 'm1', 's.api').spec as ProcessSpec;
    expect(spec.ready).toEqual({ port: 8080, command: undefined, timeout: 30 });
  });
});
