import { describe, expect, it } from 'vitest';
import { deployment, issuesOf, load, only } from '../../test/support/loadFixtures.ts';

const twoServices = (env: string, extra = '') =>
  `services:\n  cache:\n    type: process\n    start: node c.js\n    ports: { main: 6379 }\n  web:\n    type: process\n    start: node web.js\n    dependsOn: [cache]\n${extra}    env: ${env}\n`;
const BOTH = 'distribution:\n  cache: m1\n  web: m2\n';

describe('environments strata sets', () => {
  it('leaves every other name to the author: a dependency prefix with other suffixes, PG* in a process, lower case', () => {
    expect(() => load(deployment({ services: twoServices('{ CACHE_PASSWORD: x, PGHOST: db, host: x, port: 1, Strata_x: y }'), distribution: BOTH }))).not.toThrow();
    const registry = 'services:\n  container-registry:\n    type: process\n    start: node r.js\n  web:\n    type: process\n    start: node web.js\n    dependsOn: [container-registry]\n';
    expect(() => load(deployment({ services: registry, distribution: 'distribution:\n  container-registry: m1\n  web: m2\n' }))).not.toThrow();
  });

  it('refuses the variables a dependency gives, naming the dependency', () => {
    for (const key of ['CACHE_HOST', 'CACHE_PORT', 'CACHE_PORT_MAIN', 'CACHE_ADDRESSES']) {
      const i = only(issuesOf(deployment({ services: twoServices(`{ ${key}: x }`), distribution: BOTH })));
      expect(i).toMatchObject({ field: `services.web.env.${key}`, message: `"${key}" is set by strata (from dependency "cache"); an env entry cannot replace it, choose another name` });
    }
  });

  it('refuses the reserved namespaces even where strata sets nothing today', () => {
    for (const key of ['PORT', 'PORT_ANY', 'STRATA_ANY', 'CONTAINER', 'CONTAINER_ANY', 'STATE_DIR']) {
      expect(only(issuesOf(deployment({ services: twoServices(`{ ${key}: x }`), distribution: BOTH }))).field).toBe(`services.web.env.${key}`);
    }
  });

  it('refuses a connectsTo binding the same way, and one dependency in both lists is no conflict', () => {
    const both = twoServices('{ A: b }', '    connectsTo: [cache]\n');
    expect(() => load(deployment({ services: both, distribution: BOTH }))).not.toThrow();
    expect(only(issuesOf(deployment({ services: twoServices('{ CACHE_HOST: b }', '    connectsTo: [cache]\n'), distribution: BOTH }))).field).toBe('services.web.env.CACHE_HOST');
  });

  it('refuses PG* in a postgresql-database service, whose tools read them', () => {
    const network = 'machines:\n  m1: { address: 10.0.0.1, containers: { pg: {} } }\n  m2: { address: 10.0.0.2 }\n';
    const services = 'services:\n  app-db:\n    type: postgresql-database\n    env: { PGPORT: "1" }\n';
    expect(only(issuesOf(deployment({ network, services, distribution: 'distribution:\n  app-db: { machine: m1, container: pg }\n' }))).message).toContain('"PGPORT" is set by strata from the container');
  });
});
