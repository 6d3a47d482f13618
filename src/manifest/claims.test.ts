import { describe, expect, it } from 'vitest';
import { claimId, collide, conflicts, machineClaims, newClaims, type Claim } from './claims.ts';
import type { Item, MachineManifest, Manifest } from './types.ts';

const item = (over: Partial<Item>): Item => ({ key: 's.x', machine: 'm1', layer: 'service', name: 'x', module: 'process', spec: { start: 'x', env: {} }, dependsOn: [], stateful: false, hash: 'h', ...over });
const machine = (items: Item[], address = '10.0.0.1'): MachineManifest => ({ name: 'm1', address, target: { kind: 'local' }, items });
const manifest = (m: MachineManifest): Manifest => ({ version: 1, deployment: 'd', machines: { m1: m }, artifacts: {}, hash: 'h' });

describe('claims', () => {
  it('a process claims the ports strata gives it (PORT, PORT_NAME, its ready port); a database nothing', () => {
    const m = machine([
      item({ key: 's.web', spec: { start: 'x', env: { HOST: '10.0.0.1', PORT: '80', PORT_ADMIN: '9000', GREETING: '81' }, ready: { port: 80, timeout: 5 } } }),
      item({ key: 's.db', module: 'postgresql-database', spec: { database: 'db', env: { PGPORT: '5432' } } }),
    ]);
    expect(machineClaims(m).map(claimId)).toEqual(['m1/s.web port 10.0.0.1:80', 'm1/s.web port 10.0.0.1:9000']);
  });

  it('a file service claims the tree under its path; a machine file and a directory their own path', () => {
    const m = machine([
      item({ key: 's.pages', module: 'file', spec: { path: '/srv/www', allowed: ['/srv'] } }),
      item({ key: 'f.1', layer: 'infrastructure', name: '/etc/app/a.conf', module: 'file', spec: { path: '/etc/app', allowed: ['/etc/app'] } }),
      item({ key: 'dir.1', layer: 'infrastructure', name: '/srv/data', module: 'directory', spec: { path: '/srv/data', mode: '755', allowed: ['/srv'] } }),
    ]);
    const paths = machineClaims(m).map((c) => (c.kind === 'path' ? `${c.path}${c.tree ? '/**' : ''}` : ''));
    expect(paths).toEqual(['/srv/www/**', '/etc/app/a.conf', '/srv/data']);
  });

  it('ports collide on the same address or a wildcard one; paths when equal or inside a placed tree', () => {
    const port = (address: string, p: number): Claim => ({ kind: 'port', machine: 'm1', item: item({}), address, port: p });
    const path = (p: string, tree: boolean): Claim => ({ kind: 'path', machine: 'm1', item: item({}), path: p, tree });
    expect(collide(port('10.0.0.1', 80), port('10.0.0.1', 80))).toBe(true);
    expect(collide(port('10.0.0.1', 80), port('10.0.0.2', 80))).toBe(false);
    expect(collide(port('0.0.0.0', 80), port('10.0.0.2', 80))).toBe(true);
    expect(collide(port('10.0.0.1', 80), port('10.0.0.1', 81))).toBe(false);
    expect(collide(path('/srv/www', true), path('/srv/www/a/b', false))).toBe(true);
    expect(collide(path('/srv/www/a', false), path('/srv/www', true))).toBe(true);
    expect(collide(path('/srv/www2', false), path('/srv/www', true))).toBe(false);
    expect(collide(path('/srv', false), path('/srv/www', true))).toBe(false);
    expect(collide(path('/srv/data', false), path('/srv/data', false))).toBe(true);
    expect(collide(port('10.0.0.1', 80), path('/srv', true))).toBe(false);
    expect(conflicts([port('10.0.0.1', 80)], [{ deployment: 'other', generation: 3, claim: port('10.0.0.1', 80) }])).toHaveLength(1);
  });

  it('only the claims the recorded generation did not make are new', () => {
    const web = item({ key: 's.web', spec: { start: 'x', env: { PORT: '80' } } });
    const before = manifest(machine([web]));
    expect(newClaims(before, before).size).toBe(0);
    expect([...newClaims(undefined, before).values()].flat().map(claimId)).toEqual(['m1/s.web port 10.0.0.1:80']);
    const moved = manifest(machine([item({ key: 's.web', spec: { start: 'y', env: { PORT: '81' } } })]));
    expect([...newClaims(before, moved).values()].flat().map(claimId)).toEqual(['m1/s.web port 10.0.0.1:81']);
  });
});
