import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployment, issuesOf, load, only, pos, ROOT, ROOT_TEXT, type Files } from '../../test/support/loadFixtures.ts';

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
    // the field is the one where the parser noticed: the entry after the unclosed map
    expect(issues[0]).toMatchObject({ file: '/repo/network.yaml', field: 'machines.m2' });
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
