import { describe, expect, it } from 'vitest';
import { deployment, issuesOf, load, only } from '../../test/support/loadFixtures.ts';

const web = (port: number) => `services:\n  web:\n    type: process\n    start: node web.js\n    ports: { main: ${port} }\n`;

describe('claims on what machines share', () => {
  it('lets two machine entries on one address use different ports, and one port on different addresses', () => {
    const network = 'machines:\n  m1: { address: db.example }\n  m2: { address: DB.Example, ssh: { port: 2222 } }\n';
    const services = `${web(8080)}  api:\n    type: process\n    start: node api.js\n    ports: { main: 8081 }\n`;
    expect(() => load(deployment({ network, services, distribution: 'distribution:\n  web: m1\n  api: m2\n' }))).not.toThrow();
    expect(() => load(deployment({ services: web(8080), distribution: 'distribution:\n  web: [m1, m2]\n' }))).not.toThrow();
  });

  it('compares addresses as hosts: letter case and IPv6 brackets do not make another host', () => {
    const network = 'machines:\n  m1: { address: db.example }\n  m2: { address: DB.Example, ssh: { port: 2222 } }\n';
    const i = only(issuesOf(deployment({ network, services: web(8080), distribution: 'distribution:\n  web: [m1, m2]\n' })));
    expect(i.message).toContain('port 8080 on machine "m2" is already used by service "web" (port main) on machine "m1"');
    const v6 = 'machines:\n  m1: { address: "[::1]", target: local }\n  m2: { address: "::1", target: local }\n';
    expect(issuesOf(deployment({ network: v6, services: web(8080), distribution: 'distribution:\n  web: [m1, m2]\n' })).map((x) => x.message).join('\n')).toContain('port 8080');
  });

  it('takes a custom ssh.port as the port strata needs, and 22 then as free', () => {
    const network = 'machines:\n  m1: { address: 10.0.0.1, ssh: { port: 2200 } }\n  m2: { address: 10.0.0.2 }\n';
    expect(only(issuesOf(deployment({ network, services: web(2200), distribution: 'distribution:\n  web: m1\n' }))).message).toContain('port 2200 on machine "m1" is where strata reaches it over SSH');
    expect(() => load(deployment({ network, services: web(22), distribution: 'distribution:\n  web: m1\n' }))).not.toThrow();
  });

  it('allows one path on two hosts, refuses it twice on one (local machines share the controller host)', () => {
    const files = (m: string, addr: string, target = '') => `  ${m}:\n    address: ${addr}\n${target}    allowedPaths: [/srv]\n    files: [{ path: /srv/app.conf, content: x }]\n`;
    expect(() => load(deployment({ network: `machines:\n${files('m1', '10.0.0.1')}${files('m2', '10.0.0.2')}` }))).not.toThrow();
    const local = `machines:\n${files('m1', '127.0.0.2', '    target: local\n')}${files('m2', '127.0.0.3', '    target: local\n')}`;
    expect(only(issuesOf(deployment({ network: local }))).message).toContain('places /srv/app.conf, which a machine file of "m1" on machine "m1" (the same host) places too');
  });

  it('refuses allowedPaths inside the default root and roots that are system directories, not a root of its own', () => {
    const inside = 'machines:\n  m1: { address: 10.0.0.1, allowedPaths: [/var/lib/strata/www] }\n  m2: { address: 10.0.0.2 }\n';
    expect(only(issuesOf(deployment({ network: inside }))).message).toContain('"/var/lib/strata/www" overlaps the runtime root /var/lib/strata (the default)');
    for (const root of ['/', '/etc', '/usr/local', '/home']) {
      expect(only(issuesOf(deployment({ network: `machines:\n  m1: { address: 10.0.0.1, root: ${root} }\n  m2: { address: 10.0.0.2 }\n` }))).field).toBe('machines.m1.root');
    }
    expect(() => load(deployment({ network: 'machines:\n  m1: { address: 10.0.0.1, root: /opt/strata, allowedPaths: [/srv] }\n  m2: { address: 10.0.0.2, root: /opt/strata }\n' }))).not.toThrow();
  });
});
