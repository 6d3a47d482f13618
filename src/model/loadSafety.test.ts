import { describe, expect, it } from 'vitest';
import { ModelError } from '../errors.ts';
import { deployment, issuesOf, load, only, pos, ROOT, ROOT_TEXT, NETWORK, ONE_SERVICE } from '../../test/support/loadFixtures.ts';

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
