import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDeployment } from '../../src/api/apply.ts';
import { planDeployment } from '../../src/api/plan.ts';
import { type StatusReport, deploymentStatus } from '../../src/api/status.ts';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';
import { type Fixture, helloWorldFixture } from '../support/testnet.ts';
import { contextFor } from '../../src/api/services.ts';

// The hello-world example (server, two clients, and a bystander) on real sshd test hosts.
let fx: Fixture;
let root: string;
const addr = (m: string) => fx.host(m).address;
const pidOf = (s: StatusReport, machine: string, service: string) =>
  s.machines.find((m) => m.machine === machine)?.items.find((i) => i.name === service)?.pid;
const status = () => deploymentStatus('hello-world', contextFor({ stateDir: fx.stateDir }));
const edit = (file: string, from: string | RegExp, to: string) => {
  const path = join(fx.work, file);
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${file} changed nothing`);
  writeFileSync(path, next);
};
const allLogins = () => ['test1', 'test2', 'test3', 'test4'].map((m) => fx.logins(m));

beforeAll(async () => {
  fx = await helloWorldFixture('127.0.21', ['test1', 'test2', 'test3', 'test4']);
  root = join(fx.work, 'strata.testnet.yaml');
  // A service that depends on nothing: it must be left alone by every change below.
  writeFileSync(
    join(fx.work, 'services.yaml'),
    `${readFileSync(join(fx.work, 'services.yaml'), 'utf8')}
  bystander:
    type: process
    artifact: services/server
    start: node server.js
    env: { GREETING: "I am not involved" }
    ports: { main: 5100 }
    ready: { port: main }
`,
  );
  edit('distribution.yaml', 'hello-world-client: [test1, test3]', 'hello-world-client: [test1, test3]\n  bystander: test1');
});

afterAll(async () => {
  await fx?.close();
});

describe('hello-world on real SSH hosts', () => {
  it('first deployment: the clients get "Hello world!" from the server over the network', async () => {
    const r = await cli('apply', root, '--state', fx.stateDir, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out);
    expect(result.generation).toBe(1);
    expect(Object.keys(result.uploaded).sort()).toEqual(['test1', 'test2', 'test3']);

    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test1'), 5100)).toBe('I am not involved\n');
    // The server runs on test2 only, bound to test2's own address.
    await expect(ask(addr('test1'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
    // Each machine recorded generation 1 in its own runtime root.
    for (const m of ['test1', 'test2', 'test3']) expect(readFileSync(fx.path(m, '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim()).toBe('1');
    expect(existsSync(fx.path('test4', '/var/lib/strata/deployments/hello-world/generations'))).toBe(false);
  });

  it('a second apply with nothing changed sends nothing and restarts nothing', async () => {
    const before = await status();
    const logins = allLogins();
    const plan = await planDeployment(root, contextFor({ stateDir: fx.stateDir }));
    expect(plan.steps).toEqual([]);
    const result = await applyDeployment(plan, contextFor({ stateDir: fx.stateDir }));
    expect(result.bytesSent).toBe(0);
    expect(result.uploaded).toEqual({});
    expect(allLogins()).toEqual(logins);

    const r = await cli('apply', root, '--state', fx.stateDir, '--json');
    expect(JSON.parse(r.out)).toEqual({ changed: false, generation: 1 });
    expect(allLogins()).toEqual(logins);

    const after = await status();
    for (const [m, s] of [['test1', 'hello-world-client'], ['test3', 'hello-world-client'], ['test2', 'hello-world-server'], ['test1', 'bystander']] as const) {
      expect(pidOf(after, m, s)).toBeDefined();
      expect(pidOf(after, m, s)).toBe(pidOf(before, m, s));
    }
  });

  it('moving the server re-activates the server and its dependents, and nothing else', async () => {
    const before = await status();
    edit('distribution.yaml', 'hello-world-server: test2', 'hello-world-server: test3');
    const plan = await planDeployment(root, contextFor({ stateDir: fx.stateDir }));
    expect(plan.changes.map((c) => `${c.action} ${c.name} ${c.machine}`).sort()).toEqual([
      'move hello-world-server test3',
      'upgrade hello-world-client test1',
      'upgrade hello-world-client test3',
    ]);
    const r = await cli('apply', root, '--state', fx.stateDir, '--json');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out);
    // Only the server's artifact travelled, and only to its new machine.
    expect(Object.keys(result.uploaded)).toEqual(['test3']);
    expect(result.uploaded.test3).toHaveLength(1);

    const after = await status();
    expect(pidOf(after, 'test1', 'bystander')).toBe(pidOf(before, 'test1', 'bystander'));
    expect(pidOf(after, 'test1', 'hello-world-client')).not.toBe(pidOf(before, 'test1', 'hello-world-client'));
    expect(pidOf(after, 'test3', 'hello-world-client')).not.toBe(pidOf(before, 'test3', 'hello-world-client'));
    expect(after.machines.find((m) => m.machine === 'test2')?.items).toEqual([]);
    await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
  });

  it('a failing activation rolls back: the previous generation serves again', async () => {
    const before = await status();
    edit('services.yaml', 'start: node server.js\n    ports: { main: 5000 }', 'start: node no-such-file.js\n    ports: { main: 5000 }');
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/activate hello-world-server on test3 failed/);
    expect(r.err).toMatch(/Cannot find module/);
    expect(r.err).toMatch(/rolled back 1 completed step/);

    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    const after = await status();
    expect(after.generation).toBe(2);
    // test4 is in the network but has never had anything to do.
    expect(after.machines.map((m) => [m.machine, m.generation, m.lock])).toEqual([
      ['test1', 2, null],
      ['test2', 2, null],
      ['test3', 2, null],
      ['test4', null, null],
    ]);
    expect(pidOf(after, 'test3', 'hello-world-server')).not.toBe(pidOf(before, 'test3', 'hello-world-server'));
    expect(pidOf(after, 'test1', 'hello-world-client')).toBe(pidOf(before, 'test1', 'hello-world-client'));
    edit('services.yaml', 'start: node no-such-file.js', 'start: node server.js');
  });

  it('strata rollback returns to the previous generation', async () => {
    const r = await cli('rollback', root, '--state', fx.stateDir, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ rolledBackTo: 1, generation: 3 });
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
    await expect(ask(addr('test3'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
  });

  it('a saved plan is refused once the recorded state has moved on', async () => {
    const planFile = join(fx.work, 'plan.json');
    edit('distribution.yaml', 'hello-world-server: test3', 'hello-world-server: test1');
    expect((await cli('plan', root, '--state', fx.stateDir, '--out', planFile, '-q')).code).toBe(0);
    expect(JSON.parse(readFileSync(planFile, 'utf8')).basis.generation).toBe(3);
    // Someone else deploys first (the server back on test3), so the saved plan's basis is gone.
    edit('distribution.yaml', 'hello-world-server: test1', 'hello-world-server: test3');
    const other = await cli('apply', root, '--state', fx.stateDir, '-q');
    expect(other.err).toBe('');
    expect(other.code).toBe(0);
    const logins = allLogins();
    const r = await cli('apply', planFile, '--state', fx.stateDir);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/stale plan/);
    expect(allLogins()).toEqual(logins);
  });

  it('a host key mismatch is refused before anything is sent', async () => {
    const physical = readFileSync(join(fx.work, 'testnet/network.physical.yaml'), 'utf8');
    const wrongKey = fx.host('test1').hostKey;
    writeFileSync(join(fx.work, 'network.badkey.yaml'), physical.replace(fx.host('test4').hostKey, wrongKey));
    writeFileSync(join(fx.work, 'strata.badkey.yaml'), 'name: badkey\nnetwork: [network.yaml, network.four.yaml, network.badkey.yaml]\nservices: services.yaml\ndistribution: distribution.badkey.yaml\n');
    writeFileSync(join(fx.work, 'network.four.yaml'), 'machines:\n  test4: {}\n');
    writeFileSync(join(fx.work, 'distribution.badkey.yaml'), 'distribution:\n  hello-world-server: test4\n');
    const logins = fx.logins('test4');
    const rootBefore = readdirSync(fx.path('test4', '/var/lib/strata'));
    const r = await cli('apply', join(fx.work, 'strata.badkey.yaml'), '--state', fx.stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/host key of test4 .* does not match/);
    expect(fx.logins('test4')).toBe(logins);
    expect(readdirSync(fx.path('test4', '/var/lib/strata'))).toEqual(rootBefore);
    expect(rootBefore).not.toContain('lock');
  });

  it('hostile names and values do no harm', async () => {
    const hostile = "$(touch /tmp/pwned)'; rm -rf / #\n`touch /tmp/pwned2` \"$HOME\"";
    // As a name: refused by validation, before any machine is contacted.
    writeFileSync(join(fx.work, 'services.evil.yaml'), `services:\n  ${JSON.stringify("$(touch /tmp/pwned)")}:\n    type: process\n    start: "true"\n`);
    writeFileSync(join(fx.work, 'strata.evil.yaml'), 'name: evil\nnetwork: [network.yaml, testnet/network.physical.yaml]\nservices: services.evil.yaml\ndistribution: distribution.yaml\n');
    const logins = allLogins();
    const refused = await cli('apply', join(fx.work, 'strata.evil.yaml'), '--state', fx.stateDir);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/services\.evil\.yaml:2:\d+: services\.\$\(touch \/tmp\/pwned\): .*safe name/);
    expect(allLogins()).toEqual(logins);

    // As values: an environment value and a file path reach the machine verbatim.
    writeFileSync(
      join(fx.work, 'services.values.yaml'),
      `services:
  greeter:
    type: process
    artifact: services/server
    start: node server.js
    env: { GREETING: ${JSON.stringify(hostile)} }
    ports: { main: 5200 }
    ready: { port: main }
  files:
    type: file
    artifact: services/proxy
    path: ${JSON.stringify(`/tmp/files/x $(touch /tmp/pwned)'; rm -rf / #`)}
`,
    );
    writeFileSync(join(fx.work, 'network.values.yaml'), 'machines:\n  test4:\n    allowedPaths: [/tmp/files]\n');
    writeFileSync(join(fx.work, 'distribution.values.yaml'), 'distribution:\n  greeter: test4\n  files: test4\n');
    writeFileSync(join(fx.work, 'strata.values.yaml'), 'name: values\nnetwork: [network.yaml, network.values.yaml, testnet/network.physical.yaml]\nservices: services.values.yaml\ndistribution: distribution.values.yaml\n');
    const r = await cli('apply', join(fx.work, 'strata.values.yaml'), '--state', fx.stateDir, '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(await ask(addr('test4'), 5200)).toBe(`${hostile}\n`);
    expect(readFileSync(fx.path('test4', `/tmp/files/x $(touch /tmp/pwned)'; rm -rf / #/proxy.js`), 'utf8')).toMatch(/TCP proxy/);
    for (const m of ['test1', 'test2', 'test3', 'test4']) {
      expect(existsSync(fx.path(m, '/tmp/pwned'))).toBe(false);
      expect(existsSync(fx.path(m, '/tmp/pwned2'))).toBe(false);
    }
    expect(existsSync('/tmp/pwned')).toBe(false);
    expect(existsSync('/tmp/pwned2')).toBe(false);
    expect(existsSync('/usr/bin/node')).toBe(true);
  });

  it('malformed models exit 2 with file:line errors and no machine is contacted', async () => {
    edit('services.yaml', 'ports: { main: 5001 }', 'ports: { main: "five thousand" }');
    const logins = allLogins();
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/services\.yaml:\d+:\d+: services\.hello-world-client\.ports\.main: expected number/);
    expect(r.err).toMatch(/no machine was touched/);
    expect(allLogins()).toEqual(logins);
    edit('services.yaml', 'ports: { main: "five thousand" }', 'ports: { main: 5001 }');
  });

  it('a machine locked by another transition is refused with exit 4, and our locks are released', async () => {
    mkdirSync(fx.path('test1', '/var/lib/strata/deployments/hello-world/lock'));
    writeFileSync(fx.path('test1', '/var/lib/strata/deployments/hello-world/lock/owner'), 'other-controller:4242:abcd 2026-11-21T00:00:00Z\n');
    edit('distribution.yaml', 'hello-world-server: test3', 'hello-world-server: test2');
    const r = await cli('apply', root, '--state', fx.stateDir);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/test1 is locked by other-controller:4242:abcd/);
    for (const m of ['test2', 'test3']) expect(existsSync(fx.path(m, '/var/lib/strata/deployments/hello-world/lock'))).toBe(false);
    // Nothing moved: the server still answers where it was.
    expect(await ask(addr('test3'), 5000)).toBe('Hello world!\n');
    rmSync(fx.path('test1', '/var/lib/strata/deployments/hello-world/lock'), { recursive: true });
    expect((await cli('apply', root, '--state', fx.stateDir, '-q')).code).toBe(0);
    expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
  });
});
