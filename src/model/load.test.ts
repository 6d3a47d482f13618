import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError, type ModelIssue } from '../errors.ts';
import { loadModels } from './load.ts';
import type { Models } from './types.ts';

type Files = Record<string, string>;

const ROOT = '/repo/strata.yaml';
const ROOT_TEXT = ['name: demo', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
const NETWORK = ['machines:', '  m1: { address: 10.0.0.1 }', '  m2: { address: 10.0.0.2 }', ''].join('\n');
const ONE_SERVICE = ['services:', '  web:', '    type: process', '    start: node web.js', ''].join('\n');
const ON_M1 = ['distribution:', '  web: m1', ''].join('\n');

/** A deployment whose files are all valid, with some of them replaced. */
function deployment(over: Partial<Record<'root' | 'network' | 'services' | 'distribution', string>> & { extra?: Files } = {}): Files {
  return {
    [ROOT]: over.root ?? ROOT_TEXT,
    '/repo/network.yaml': over.network ?? NETWORK,
    '/repo/services.yaml': over.services ?? ONE_SERVICE,
    '/repo/distribution.yaml': over.distribution ?? ON_M1,
    ...over.extra,
  };
}

const load = (files: Files, root = ROOT): Models => loadModels(root, { readText: (p) => files[p] });

/** The issues loadModels throws; fails the test if it does not throw a ModelError. */
function issuesOf(files: Files, root = ROOT): ModelIssue[] {
  try {
    load(files, root);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    const issues = (e as ModelError).issues;
    expect(issues.length).toBeGreaterThan(0);
    return issues;
  }
  throw new Error('expected the models to be rejected');
}

/** 1-based line and column of the first occurrence of `needle` in `text` (after `from`). */
function pos(text: string, needle: string, from?: string): { line: number; column: number } {
  const start = from === undefined ? 0 : text.indexOf(from);
  expect(start, `fixture lacks ${JSON.stringify(from)}`).toBeGreaterThanOrEqual(0);
  const offset = text.indexOf(needle, start);
  expect(offset, `fixture lacks ${JSON.stringify(needle)}`).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

function only(issues: ModelIssue[]): ModelIssue {
  expect(issues, JSON.stringify(issues, null, 2)).toHaveLength(1);
  return issues[0]!;
}

describe('loadModels: the hello-world example', () => {
  const dir = join(import.meta.dirname, '../../examples/hello-world');
  const names = ['strata.yaml', 'network.yaml', 'network.local.yaml', 'services.yaml', 'distribution.yaml'];
  const files: Files = Object.fromEntries(names.map((n) => [`/repo/${n}`, readFileSync(join(dir, n), 'utf8')]));

  it('loads machines, services, distribution and dependencies', () => {
    const m = load(files);
    expect(m.name).toBe('hello-world');
    expect(m.rootFile).toBe(ROOT);
    expect(m.baseDir).toBe('/repo');
    expect(Object.keys(m.machines).sort()).toEqual(['test1', 'test2', 'test3']);
    expect(Object.keys(m.services).sort()).toEqual(['hello-world-client', 'hello-world-server']);
    expect(m.distribution).toEqual({
      'hello-world-server': [{ machine: 'test2' }],
      'hello-world-client': [{ machine: 'test1' }, { machine: 'test3' }],
    });
    expect(m.services['hello-world-client']!.dependsOn).toEqual(['hello-world-server']);
    expect(m.services['hello-world-server']!.dependsOn).toEqual([]);
    expect(m.services['hello-world-server']!.connectsTo).toEqual([]);
    expect(m.services['hello-world-server']!.ports).toEqual({ main: 5000 });
    expect(m.services['hello-world-server']!.start).toBe('node server.js');
    // the artifact is resolved relative to services.yaml
    expect(m.services['hello-world-server']!.artifactDir).toBe('/repo/services/server');
    expect(m.services['hello-world-client']!.artifactDir).toBe('/repo/services/client');
  });

  it('merges the logical and the physical network file', () => {
    const m = load(files);
    // logical (network.yaml): system and properties; physical (network.local.yaml): target and address
    expect(m.machines.test3).toMatchObject({ name: 'test3', system: 'x86_64-linux', properties: { zone: 'b' }, target: 'local', address: '127.0.2.3' });
    expect(m.machines.test1).toMatchObject({ properties: { zone: 'a' }, address: '127.0.2.1' });
  });

  it('locates fields of the merged models in the file that wrote them', () => {
    const m = load(files);
    const services = files['/repo/services.yaml']!;
    expect(m.locate('services', ['services', 'hello-world-client', 'dependsOn'])).toEqual({ file: '/repo/services.yaml', ...pos(services, 'dependsOn') });
    const physical = files['/repo/network.local.yaml']!;
    expect(m.locate('network', ['machines', 'test2', 'address'])).toEqual({ file: '/repo/network.local.yaml', ...pos(physical, 'address', 'test2') });
  });
});

describe('loadModels: merging network files', () => {
  const root = ['name: demo', 'network: [logical.yaml, physical.yaml]', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
  const logical = ['machines:', '  m1:', '    system: x86_64-linux', '    properties: { zone: a, memory: 4096 }', '    allowedPaths: [/srv]', ''].join('\n');
  const physical = ['# where the machines are', 'machines:', '  m1:', '    address: 192.0.2.10', '    properties: { rack: r7 }', '    ssh: { user: deploy, port: 2222 }', ''].join('\n');

  it('puts the fields of both files on the machine', () => {
    const m = load(deployment({ root, network: '', extra: { '/repo/logical.yaml': logical, '/repo/physical.yaml': physical } }));
    expect(m.machines.m1).toMatchObject({
      name: 'm1',
      system: 'x86_64-linux',
      address: '192.0.2.10',
      target: 'ssh',
      allowedPaths: ['/srv'],
      ssh: { user: 'deploy', port: 2222 },
      properties: { zone: 'a', memory: 4096, rack: 'r7' },
    });
  });

  it('accepts the same value in both files', () => {
    const again = physical.replace('properties: { rack: r7 }', 'properties: { rack: r7, zone: a }');
    const m = load(deployment({ root, network: '', extra: { '/repo/logical.yaml': logical, '/repo/physical.yaml': again } }));
    expect(m.machines.m1!.properties).toEqual({ zone: 'a', memory: 4096, rack: 'r7' });
  });

  it('reports a conflicting value naming both files with their lines', () => {
    const conflicting = physical.replace('properties: { rack: r7 }', 'properties: { rack: r7, zone: b }');
    const i = only(issuesOf(deployment({ root, network: '', extra: { '/repo/logical.yaml': logical, '/repo/physical.yaml': conflicting } })));
    const here = pos(conflicting, 'zone');
    const there = pos(logical, 'zone');
    expect(i).toMatchObject({ file: '/repo/physical.yaml', ...here, field: 'machines.m1.properties.zone' });
    expect(here.line).toBe(5);
    expect(there.line).toBe(4);
    expect(i.message).toContain(`/repo/logical.yaml:${there.line}:${there.column}`);
    expect(i.message).toContain('"a"');
    expect(i.message).toContain('"b"');
  });

  it('reports a machine that no file gives an address', () => {
    const noAddress = physical.replace('    address: 192.0.2.10\n', '');
    const i = only(issuesOf(deployment({ root, network: '', extra: { '/repo/logical.yaml': logical, '/repo/physical.yaml': noAddress } })));
    expect(i.field).toBe('machines.m1.address');
    expect(i.message).toMatch(/required/);
    expect(i.file).toBe('/repo/logical.yaml');
    expect(i.line).toBe(pos(logical, 'm1').line);
  });
});

describe('loadModels: files and syntax', () => {
  it('reports a missing network file at the root file line that names it', () => {
    const files = deployment();
    delete files['/repo/network.yaml'];
    const i = only(issuesOf(files));
    expect(i).toMatchObject({ file: ROOT, ...pos(ROOT_TEXT, 'network'), field: 'network' });
    expect(i.line).toBe(2);
    expect(i.message).toContain('/repo/network.yaml');
    expect(i.message).toMatch(/cannot be read/);
  });

  it('reports a missing file named in a list at the list element', () => {
    const root = ['name: demo', 'network:', '  - network.yaml', '  - physical.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
    const i = only(issuesOf(deployment({ root })));
    expect(i).toMatchObject({ file: ROOT, ...pos(root, 'physical.yaml'), field: 'network[1]' });
    expect(i.line).toBe(4);
  });

  it('reports a missing root file', () => {
    const i = only(issuesOf({}, '/repo/nope.yaml'));
    expect(i).toMatchObject({ file: '/repo/nope.yaml', line: 1, column: 1 });
  });

  it('gives file:line:column for a YAML syntax error', () => {
    const services = ['services:', '  web:', '    type: process', '    start: "node web.js', '    ports: { main: 80 }', ''].join('\n');
    const issues = issuesOf(deployment({ services }));
    expect(issues.every((i) => i.file === '/repo/services.yaml')).toBe(true);
    expect(issues[0]!.message).toMatch(/^YAML: /);
    // the unterminated string starts on line 4; the parser reports it there or where it gives up
    expect(issues[0]!.line).toBeGreaterThanOrEqual(4);
    expect(issues[0]!.column).toBeGreaterThanOrEqual(1);
  });

  it('points at the unclosed flow map', () => {
    const network = ['machines:', '  m1: { address: 10.0.0.1', '  m2: { address: 10.0.0.2 }', ''].join('\n');
    const issues = issuesOf(deployment({ network }));
    expect(issues[0]).toMatchObject({ file: '/repo/network.yaml', field: '' });
    expect(issues[0]!.line).toBeGreaterThanOrEqual(2);
    expect(issues[0]!.message).toMatch(/^YAML: .*}/);
  });

  it('rejects tab indentation at the tabbed line', () => {
    const network = ['machines:', '\tm1:', '\t\taddress: 10.0.0.1', ''].join('\n');
    const issues = issuesOf(deployment({ network }));
    expect(issues[0]).toMatchObject({ file: '/repo/network.yaml', line: 2, column: 1 });
    expect(issues[0]!.message).toMatch(/tab/i);
  });

  it('rejects duplicate keys at the second occurrence', () => {
    const services = ['services:', '  web:', '    type: process', '    start: node a.js', '    start: node b.js', ''].join('\n');
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'start', 'node a.js') });
    expect(i.line).toBe(5);
    expect(i.message).toMatch(/unique/i);
  });

  it('rejects binary junk, pointing at the NUL byte', () => {
    const services = ['services:', '  web:', '    type: process', '    start: no\u0000de', ''].join('\n');
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, '\u0000') });
    expect(i.line).toBe(4);
    expect(i.message).toMatch(/NUL/);
  });

  it('points an unknown field (strict objects) at its line', () => {
    const services = ['services:', '  web:', '    type: process', '    start: node web.js', '    restart: always', ''].join('\n');
    const i = only(issuesOf(deployment({ services })));
    expect(i).toEqual({ file: '/repo/services.yaml', ...pos(services, 'restart'), field: 'services.web.restart', message: 'unknown field "restart"' });
    expect(i.line).toBe(5);
    expect(i.column).toBe(5);
  });

  it('reports an unknown field in the root file', () => {
    const root = `${ROOT_TEXT}servces: extra.yaml\n`;
    const i = only(issuesOf(deployment({ root })));
    expect(i).toMatchObject({ file: ROOT, ...pos(root, 'servces'), field: 'servces' });
    expect(i.line).toBe(5);
  });

  it('reports wrong types at the value', () => {
    const services = ['services:', '  web:', '    type: process', '    start: node web.js', '    ports: { main: "80" }', '    env: [A, B]', ''].join('\n');
    const issues = issuesOf(deployment({ services }));
    const port = issues.find((i) => i.field === 'services.web.ports.main');
    const env = issues.find((i) => i.field === 'services.web.env');
    // errors point at the field's key (`main`), on the line of the bad value
    expect(port).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'main: "80"') });
    expect(port!.message).toMatch(/number/);
    expect(env).toMatchObject({ file: '/repo/services.yaml', line: 6 });
    expect(env!.message).toMatch(/record|object/);
  });

  it('rejects an out-of-range port', () => {
    const services = ['services:', '  web:', '    type: process', '    start: node web.js', '    ports: { main: 70000 }', ''].join('\n');
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'main: 70000'), field: 'services.web.ports.main' });
    expect(i.message).toContain('65535');
  });

  it('reports required fields that are missing', () => {
    const services = ['services:', '  web:', '    type: process', '  conf:', '    type: file', '    artifact: conf', ''].join('\n');
    const issues = issuesOf(deployment({ services, distribution: 'distribution: {}\n', extra: {} }));
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: '/repo/services.yaml', field: 'services.web.start', line: 2, message: expect.stringMatching(/required/) }),
        expect.objectContaining({ file: '/repo/services.yaml', field: 'services.conf.path', line: 4, message: expect.stringMatching(/required/) }),
      ]),
    );
  });
});

describe('loadModels: references', () => {
  const twoServices = ['services:', '  db:', '    type: process', '    start: run-db', '    ports: { main: 5432 }', '  web:', '    type: process', '    start: run-web', '    dependsOn: [db]', ''].join('\n');

  it('rejects an unknown machine in the distribution', () => {
    const distribution = ['distribution:', '  db: m1', '  web: [m1, m9]', ''].join('\n');
    const i = only(issuesOf(deployment({ services: twoServices, distribution })));
    expect(i).toMatchObject({ file: '/repo/distribution.yaml', ...pos(distribution, 'm9'), field: 'distribution.web[1]', message: 'unknown machine "m9"' });
  });

  it('rejects an unknown service in the distribution', () => {
    const distribution = ['distribution:', '  db: m1', '  web: m1', '  cache: m2', ''].join('\n');
    const i = only(issuesOf(deployment({ services: twoServices, distribution })));
    expect(i).toMatchObject({ file: '/repo/distribution.yaml', ...pos(distribution, 'cache'), field: 'distribution.cache', message: 'unknown service "cache"' });
  });

  it('rejects an unknown container', () => {
    const network = ['machines:', '  m1:', '    address: 10.0.0.1', '    containers:', '      postgresql: {}', ''].join('\n');
    const distribution = ['distribution:', '  db: { machine: m1, container: postgresql }', '  web: { machine: m1, container: mysql }', ''].join('\n');
    const i = only(issuesOf(deployment({ network, services: twoServices, distribution })));
    expect(i).toMatchObject({ file: '/repo/distribution.yaml', line: 3, field: 'distribution.web[0]' });
    expect(i.message).toBe('unknown container "mysql" on machine "m1"');
  });

  it('rejects a dependsOn naming an unknown service', () => {
    const services = twoServices.replace('dependsOn: [db]', 'dependsOn: [db, cache]');
    const i = only(issuesOf(deployment({ services, distribution: 'distribution:\n  db: m1\n  web: m2\n' })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'cache'), field: 'services.web.dependsOn[1]', message: 'unknown service "cache"' });
  });

  it('rejects a dependency that is not distributed', () => {
    const i = only(issuesOf(deployment({ services: twoServices, distribution: 'distribution:\n  web: m2\n' })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(twoServices, 'db]'), field: 'services.web.dependsOn[0]' });
    expect(i.message).toMatch(/not distributed/);
  });

  it('names a dependency cycle a -> b -> c -> a', () => {
    const services = [
      'services:',
      '  a:',
      '    type: process',
      '    start: run-a',
      '    dependsOn: [b]',
      '  b:',
      '    type: process',
      '    start: run-b',
      '    dependsOn: [c]',
      '  c:',
      '    type: process',
      '    start: run-c',
      '    dependsOn: [a]',
      '',
    ].join('\n');
    const distribution = 'distribution:\n  a: m1\n  b: m1\n  c: m2\n';
    const i = only(issuesOf(deployment({ services, distribution })));
    expect(i.message).toBe('dependency cycle: a -> b -> c -> a');
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'b]'), field: 'services.a.dependsOn[0]' });
    expect(i.line).toBe(5);
  });

  it('names a two-service cycle and a self dependency', () => {
    const services = ['services:', '  a:', '    type: process', '    start: run-a', '    dependsOn: [b]', '  b:', '    type: process', '    start: run-b', '    dependsOn: [a]', '  c:', '    type: process', '    start: run-c', '    dependsOn: [c]', ''].join('\n');
    const issues = issuesOf(deployment({ services, distribution: 'distribution:\n  a: m1\n  b: m1\n  c: m1\n' }));
    expect(issues).toHaveLength(2);
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ message: 'dependency cycle: a -> b -> a', line: 5 }),
        expect.objectContaining({ field: 'services.c.dependsOn[0]', line: 13, message: expect.stringMatching(/itself/) }),
      ]),
    );
  });

  it('allows connectsTo cycles', () => {
    const services = ['services:', '  a:', '    type: process', '    start: run-a', '    connectsTo: [b]', '  b:', '    type: process', '    start: run-b', '    connectsTo: [a]', ''].join('\n');
    const m = load(deployment({ services, distribution: 'distribution:\n  a: m1\n  b: m2\n' }));
    expect(m.services.a!.connectsTo).toEqual(['b']);
    expect(m.services.b!.connectsTo).toEqual(['a']);
  });

  it('rejects two services with the same port on one machine, but not on different machines', () => {
    const services = ['services:', '  a:', '    type: process', '    start: run-a', '    ports: { http: 8080 }', '  b:', '    type: process', '    start: run-b', '    ports: { web: 8080 }', ''].join('\n');
    const clash = ['distribution:', '  a: m1', '  b: [m2, m1]', ''].join('\n');
    const i = only(issuesOf(deployment({ services, distribution: clash })));
    expect(i).toMatchObject({ file: '/repo/distribution.yaml', ...pos(clash, 'm1', 'b:'), field: 'distribution.b[1]' });
    expect(i.message).toMatch(/port 8080 on machine "m1" is already used by service "a"/);
    expect(() => load(deployment({ services, distribution: 'distribution:\n  a: m1\n  b: m2\n' }))).not.toThrow();
  });

  it('rejects a service port that a machine daemon already uses', () => {
    const network = ['machines:', '  m1:', '    address: 10.0.0.1', '    daemons:', '      pg: { start: postgres, ports: { main: 5432 } }', ''].join('\n');
    const services = ['services:', '  web:', '    type: process', '    start: run', '    ports: { main: 5432 }', ''].join('\n');
    const i = only(issuesOf(deployment({ network, services })));
    expect(i.file).toBe('/repo/distribution.yaml');
    expect(i.message).toMatch(/port 5432 .* daemon "pg"/);
  });

  it('rejects placing a service on the same machine twice', () => {
    const distribution = 'distribution:\n  web: [m1, m1]\n';
    const i = only(issuesOf(deployment({ distribution })));
    expect(i).toMatchObject({ field: 'distribution.web[1]', line: 2, column: pos(distribution, 'm1]').column });
  });
});

describe('loadModels: unsafe names and paths', () => {
  const cases: [string, string][] = [
    ['command substitution', '$(touch /tmp/pwned)'],
    ['quote and comment', "'; rm -rf / #"],
    ['newline', 'web\\nrm -rf /'],
    ['leading digit', '1web'],
    ['non-ASCII letter', 'wéb'],
    ['too long', `w${'e'.repeat(63)}`],
  ];
  for (const [what, name] of cases) {
    it(`rejects a service named with ${what}`, () => {
      const services = ['services:', `  "${name}":`, '    type: process', '    start: run', ''].join('\n');
      const issues = issuesOf(deployment({ services, distribution: 'distribution: {}\n' }));
      const i = only(issues);
      expect(i).toMatchObject({ file: '/repo/services.yaml', line: 2, column: 3 });
      expect(i.field.startsWith('services.')).toBe(true);
      // says what was expected, and quotes the bad name so control characters stay visible
      expect(i.message).toContain('expected a safe name');
      expect(i.message).toContain(JSON.stringify(name.replace('\\n', '\n')));
    });
  }

  it('rejects an unsafe machine name and an unsafe name in a reference', () => {
    const network = ['machines:', '  "m1; reboot":', '    address: 10.0.0.1', ''].join('\n');
    expect(only(issuesOf(deployment({ network, distribution: 'distribution: {}\n' })))).toMatchObject({ file: '/repo/network.yaml', line: 2, message: expect.stringContaining('safe name') });
    const services = `${ONE_SERVICE}    dependsOn: ["$(id)"]\n`;
    const i = only(issuesOf(deployment({ services, distribution: 'distribution: {}\n' })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, '"$(id)"'), field: 'services.web.dependsOn[0]' });
    expect(i.message).toMatch(/safe name/);
  });

  it('rejects an unsafe placement name', () => {
    const distribution = 'distribution:\n  web: "m1 && reboot"\n';
    const i = only(issuesOf(deployment({ distribution })));
    expect(i).toMatchObject({ file: '/repo/distribution.yaml', line: 2 });
  });

  it('rejects an environment variable name with shell syntax', () => {
    const services = `${ONE_SERVICE}    env:\n      "A;B": x\n`;
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, '"A;B"') });
    expect(i.message).toContain('expected an environment variable name');
  });

  it('rejects a string value longer than the limit', () => {
    const services = `${ONE_SERVICE}    env:\n      BIG: ${'x'.repeat(100 * 1024)}\n`;
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'BIG'), field: 'services.web.env.BIG' });
    expect(i.message).toMatch(/too long/);
  });

  it('rejects an artifact that leaves the deployment directory', () => {
    const services = `${ONE_SERVICE}    artifact: ../../etc\n`;
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'artifact'), field: 'services.web.artifact' });
    expect(i.line).toBe(5);
    expect(i.message).toContain('leaves the deployment directory /repo');
  });

  it('accepts an artifact that goes up and comes back inside the deployment directory', () => {
    const m = load(deployment({ services: `${ONE_SERVICE}    artifact: ../repo/web\n` }));
    expect(m.services.web!.artifactDir).toBe('/repo/web');
  });

  it('rejects an absolute artifact path', () => {
    const services = `${ONE_SERVICE}    artifact: /etc\n`;
    const i = only(issuesOf(deployment({ services })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', line: 5, field: 'services.web.artifact' });
    expect(i.message).toMatch(/relative/);
  });

  it('rejects a root file naming a file outside the deployment directory', () => {
    const root = ROOT_TEXT.replace('network: network.yaml', 'network: ../shared/network.yaml');
    const files = deployment({ root, extra: { '/shared/network.yaml': NETWORK } });
    const i = only(issuesOf(files));
    expect(i).toMatchObject({ file: ROOT, line: 2, field: 'network' });
    expect(i.message).toContain('outside the deployment directory');
  });

  it('rejects a file service writing outside the machine allowedPaths', () => {
    const network = ['machines:', '  m1:', '    address: 10.0.0.1', '    allowedPaths: [/srv/www]', ''].join('\n');
    const services = ['services:', '  site:', '    type: file', '    artifact: site', '    path: /etc/nginx', ''].join('\n');
    const distribution = 'distribution:\n  site: m1\n';
    const i = only(issuesOf(deployment({ network, services, distribution })));
    expect(i).toMatchObject({ file: '/repo/distribution.yaml', line: 2, field: 'distribution.site[0]' });
    expect(i.message).toContain('/etc/nginx');
    expect(i.message).toContain('allowedPaths');
    // inside the allowed path it is fine; a sibling with the same prefix is not inside
    expect(() => load(deployment({ network, services: services.replace('/etc/nginx', '/srv/www/site'), distribution }))).not.toThrow();
    expect(() => load(deployment({ network, services: services.replace('/etc/nginx', '/srv/www2'), distribution }))).toThrow(ModelError);
  });

  it('rejects a path with ".." segments', () => {
    const services = ['services:', '  site:', '    type: file', '    artifact: site', '    path: /srv/www/../../etc', ''].join('\n');
    const i = only(issuesOf(deployment({ services, distribution: 'distribution: {}\n' })));
    expect(i).toMatchObject({ file: '/repo/services.yaml', ...pos(services, 'path'), field: 'services.site.path' });
    expect(i.message).toMatch(/\.\./);
  });

  it('rejects a machine file outside allowedPaths', () => {
    const network = ['machines:', '  m1:', '    address: 10.0.0.1', '    files:', '      - path: /etc/motd', '        content: hello', ''].join('\n');
    const i = only(issuesOf(deployment({ network })));
    expect(i).toMatchObject({ file: '/repo/network.yaml', ...pos(network, 'path'), field: 'machines.m1.files[0].path' });
  });

  it('rejects a local machine with a non-loopback address', () => {
    const network = ['machines:', '  m1:', '    target: local', '    address: 10.0.0.1', ''].join('\n');
    const i = only(issuesOf(deployment({ network })));
    expect(i).toMatchObject({ file: '/repo/network.yaml', ...pos(network, 'address'), field: 'machines.m1.address' });
    expect(i.line).toBe(4);
    expect(i.message).toMatch(/loopback/);
    expect(() => load(deployment({ network: network.replace('10.0.0.1', '127.0.0.9') }))).not.toThrow();
  });

  it('reports a conflict between target local in one file and a public address in another at the address', () => {
    const root = ['name: demo', 'network: [a.yaml, b.yaml]', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
    const a = 'machines:\n  m1: { target: local }\n';
    const b = 'machines:\n  m1:\n    address: 203.0.113.5\n';
    const i = only(issuesOf(deployment({ root, extra: { '/repo/a.yaml': a, '/repo/b.yaml': b } })));
    expect(i).toMatchObject({ file: '/repo/b.yaml', line: 3, field: 'machines.m1.address' });
  });

  it('reports every issue at once', () => {
    const services = ['services:', '  a:', '    type: process', '    start: run', '    dependsOn: [ghost]', ''].join('\n');
    const distribution = 'distribution:\n  a: m9\n  b: m1\n';
    const issues = issuesOf(deployment({ services, distribution }));
    expect(issues.map((i) => i.message).sort()).toEqual(['unknown machine "m9"', 'unknown service "b"', 'unknown service "ghost"']);
  });
});

describe('loadModels: regressions', () => {
  it('quotes a field name with a newline, so it cannot forge an issue line', () => {
    const services = ['services:', '  "web\\n  /etc/shadow:1:1: forged":', '    type: process', '    start: x', ''].join('\n');
    const issue = issuesOf(deployment({ services }))[0]!;
    expect(issue.field).toBe('services."web\\n  /etc/shadow:1:1: forged"');
    expect(issue.field).not.toContain('\n');
  });

  it('refuses two services whose addresses would land in the same environment variables', () => {
    const services = ['services:', '  user-store: { type: process, start: a }', '  user_store: { type: process, start: b }', ''].join('\n');
    const issue = only(issuesOf(deployment({ services, distribution: 'distribution:\n  user-store: m1\n' })));
    expect(issue).toMatchObject({ line: 3, field: 'services.user_store' });
    expect(issue.message).toMatch(/"user_store" and "user-store" both give their address as USER_STORE_HOST/);
  });

  it('accepts a repository path whose name merely starts with ".."', () => {
    const services = ['services:', '  web: { type: process, start: a, artifact: ..data }', ''].join('\n');
    expect(load(deployment({ services })).services.web!.artifactDir).toBe('/repo/..data');
  });

  it('refuses a local machine whose address is not a valid loopback address', () => {
    const network = ['machines:', '  m1: { target: local, address: 127.999.0.1 }', '  m2: { address: 10.0.0.2 }', ''].join('\n');
    expect(only(issuesOf(deployment({ network }))).message).toMatch(/needs a loopback address/);
  });
});

describe('loadModels: repository-relative paths (a Git tree)', () => {
  const files = (artifact: string): Files => ({
    'strata.yaml': ROOT_TEXT,
    'network.yaml': NETWORK,
    'services.yaml': ['services:', '  web:', '    type: process', '    start: node web.js', `    artifact: ${artifact}`, ''].join('\n'),
    'distribution.yaml': ON_M1,
  });
  it('keeps artifacts inside the repository whatever the working directory', () => {
    const cwd = process.cwd();
    try {
      process.chdir('/');
      const issue = only(issuesOf(files('../../etc'), 'strata.yaml'));
      expect(issue.message).toBe('"../../etc" leaves the deployment directory (the repository root)');
      expect(load(files('services/web'), 'strata.yaml').services.web!.artifactDir).toBe('services/web');
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('loadModels: postgresql-database services', () => {
  const network = ['machines:', '  m1:', '    address: 10.0.0.1', '    containers:', '      pg: { properties: { port: 5432, user: postgres } }', '  m2: { address: 10.0.0.2 }', ''].join('\n');
  const services = (extra = '') => ['services:', '  app-db:', '    type: postgresql-database', extra, ''].filter((l) => l !== '').join('\n') + '\n';
  const inPg = ['distribution:', '  app-db: { machine: m1, container: pg }', ''].join('\n');

  it('accepts a database placed into a container, stateful unless said otherwise', () => {
    const m = load(deployment({ network, services: services(), distribution: inPg }));
    expect(m.services['app-db']!.type).toBe('postgresql-database');
  });

  it('refuses a database placed on a machine without a container', () => {
    const distribution = ['distribution:', '  app-db: m1', ''].join('\n');
    expect(only(issuesOf(deployment({ network, services: services(), distribution }))).message).toMatch(/must be placed into a container/);
  });

  it('refuses fields that do not apply to a database', () => {
    const issue = only(issuesOf(deployment({ network, services: services('    start: postgres -D x'), distribution: inPg })));
    expect(issue).toMatchObject({ field: 'services.app-db.start' });
    expect(issue.message).toMatch(/does not apply to a service of type "postgresql-database"/);
  });

  it("refuses a database named like the server's own", () => {
    const s = ['services:', '  postgres: { type: postgresql-database }', ''].join('\n');
    const d = ['distribution:', '  postgres: { machine: m1, container: pg }', ''].join('\n');
    expect(only(issuesOf(deployment({ network, services: s, distribution: d }))).message).toMatch(/which the PostgreSQL server itself uses/);
  });

  it('checks the container properties that say where the server listens', () => {
    const bad = network.replace('{ port: 5432, user: postgres }', '{ port: "5432; drop", user: "x y" }');
    const issues = issuesOf(deployment({ network: bad, services: services(), distribution: inPg }));
    expect(issues.map((i) => `${i.field}: ${i.message}`).sort()).toEqual([
      'machines.m1.containers.pg.properties.port: expected the PostgreSQL server\'s port, a number from 1 to 65535',
      'machines.m1.containers.pg.properties.user: expected a PostgreSQL role name (letters, digits, "_")',
    ]);
  });

  it('takes snapshotsKept in the root file', () => {
    expect(load(deployment({ root: `${ROOT_TEXT}snapshotsKept: 3\n` })).snapshotsKept).toBe(3);
    expect(only(issuesOf(deployment({ root: `${ROOT_TEXT}snapshotsKept: 0\n` }))).field).toBe('snapshotsKept');
  });
});
