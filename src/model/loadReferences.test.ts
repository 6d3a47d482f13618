import { describe, expect, it } from 'vitest';
import { deployment, issuesOf, load, only, pos, ROOT_TEXT, NETWORK, ON_M1, type Files } from '../../test/support/loadFixtures.ts';

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
