/**
 * Names JavaScript objects already have (`constructor`, `toString`, `valueOf`,
 * `hasOwnProperty`, …) are valid names in a model: a deployment that uses one for every kind of
 * name goes through validate, plan, apply, status, a re-plan and destroy as any other, on a
 * real sshd test host and on local machines. The names JavaScript gives a meaning of their own
 * (`__proto__`, `__defineGetter__`) are refused before anything is touched.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testnetDown, testnetUp, type Testnet } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';

const SERVER_PORT = 18471;
const CLIENT_PORT = 18472;
const DAEMON_PORT = 18473;

let work: string;
let net: Testnet;
let state: string;
let root: string;

// The ssh machine `constructor` runs the server `hasOwnProperty` (port `valueOf`, env
// `toString`); the local machine `valueOf` runs the client `toString`, which depends on it (so
// it is given HASOWNPROPERTY_HOST and HASOWNPROPERTY_PORT_VALUEOF), inside the container
// `propertyIsEnumerable` of the daemon `constructor`; the local machine `toString` is empty.
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-builtins-'));
  state = join(work, 'state');
  root = join(work, 'strata.yaml');
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['constructor'], subnet: '127.0.47' });
  const host = net.hosts[0]!;
  mkdirSync(join(work, 'server'));
  writeFileSync(
    join(work, 'server/server.js'),
    "require('node:net').createServer((s) => s.end(`${process.env.toString}:${process.env.valueOf}\\n`)).listen(Number(process.env.PORT_VALUEOF), process.env.HOST);\n",
  );
  mkdirSync(join(work, 'client'));
  writeFileSync(
    join(work, 'client/client.js'),
    [
      "const net = require('node:net');",
      'net.createServer((s) => {',
      '  const u = net.connect(Number(process.env.HASOWNPROPERTY_PORT_VALUEOF), process.env.HASOWNPROPERTY_HOST);',
      "  let r = '';",
      "  u.on('data', (d) => (r += d));",
      "  u.on('end', () => s.end(`${process.env.constructor}/${process.env.CONTAINER}/${process.env.CONTAINER_TOLOCALESTRING}/${r}`));",
      "  u.on('error', (e) => s.end(`error ${e.message}`));",
      '}).listen(Number(process.env.PORT_TOSTRING), process.env.HOST);',
      '',
    ].join('\n'),
  );
  mkdirSync(join(work, 'daemon'));
  writeFileSync(join(work, 'daemon/daemon.js'), "require('node:net').createServer((s) => s.end('d\\n')).listen(Number(process.env.PORT), process.env.HOST);\n");
  writeFileSync(root, 'name: builtins\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
  writeFileSync(
    join(work, 'network.yaml'),
    [
      'machines:',
      '  constructor:',
      `    address: ${host.address}`,
      `    ssh: { identity: ${net.identityFile}, hostKey: "${host.hostKey}" }`,
      '  valueOf:',
      '    target: local',
      '    address: 127.0.47.11',
      '    containers:',
      '      propertyIsEnumerable: { daemon: constructor, properties: { toLocaleString: yes-a-property } }',
      '    daemons:',
      '      constructor:',
      '        start: node daemon.js',
      '        artifact: daemon',
      `        ports: { hasOwnProperty: ${DAEMON_PORT} }`,
      '        env: { valueOf: daemon-env }',
      '        ready: { port: hasOwnProperty, timeout: 10 }',
      '  toString:',
      '    target: local',
      '    address: 127.0.47.12',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(work, 'services.yaml'),
    [
      'services:',
      '  hasOwnProperty:',
      '    type: process',
      '    artifact: server',
      '    start: node server.js',
      `    ports: { valueOf: ${SERVER_PORT} }`,
      '    env: { toString: env-toString, valueOf: env-valueOf }',
      '    ready: { port: valueOf, timeout: 10 }',
      '  toString:',
      '    type: process',
      '    artifact: client',
      '    start: node client.js',
      `    ports: { toString: ${CLIENT_PORT} }`,
      '    env: { constructor: env-constructor }',
      '    ready: { port: toString, timeout: 10 }',
      '    dependsOn: [hasOwnProperty]',
      '',
    ].join('\n'),
  );
  writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  hasOwnProperty: constructor\n  toString: { machine: valueOf, container: propertyIsEnumerable }\n');
}, 60_000);

afterAll(async () => {
  if (root) await cli('destroy', root, '--state', state, '-q');
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

describe('names that Object.prototype has', () => {
  it('validate counts every machine, service and instance', async () => {
    const r = await cli('validate', root);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('builtins: valid (3 machines, 2 services, 2 instances)');
  });

  it('plan names each of them, in the right order', async () => {
    const r = await cli('plan', root, '--state', state, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.out);
    expect(plan.machines).toEqual(['constructor', 'valueOf']);
    expect(Object.keys(plan.desired.machines).sort()).toEqual(['constructor', 'toString', 'valueOf']);
    const steps = plan.steps.map((s: { machine: string; item: { name: string }; after: string[] }) => `${s.machine}:${s.item.name}`);
    expect(steps).toEqual(['valueOf:constructor', 'constructor:hasOwnProperty', 'valueOf:toString']);
    const client = plan.desired.machines.valueOf.items.find((i: { name: string }) => i.name === 'toString');
    expect(client.spec.env).toMatchObject({ constructor: 'env-constructor', HASOWNPROPERTY_PORT_VALUEOF: String(SERVER_PORT), CONTAINER: 'propertyIsEnumerable', CONTAINER_TOLOCALESTRING: 'yes-a-property', PORT_TOSTRING: String(CLIENT_PORT) });
    expect(Object.keys(plan.uploads).sort()).toEqual(['constructor', 'valueOf']);
  });

  it('apply deploys them on the ssh host and the local machines, and they talk to each other', async () => {
    const r = await cli('apply', root, '--state', state, '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(await ask('127.0.47.11', CLIENT_PORT)).toBe(`env-constructor/propertyIsEnumerable/yes-a-property/env-toString:env-valueOf\n`);
    expect(await ask('127.0.47.11', DAEMON_PORT)).toBe('d\n');
  });

  it('status reports them running, and a second plan has nothing to do', async () => {
    const s = await cli('status', root, '--state', state, '--json');
    expect(s.code).toBe(0);
    const items = JSON.parse(s.out).machines.flatMap((m: { machine: string; items: { name: string; state: string }[] }) => m.items.map((i) => `${m.machine}:${i.name}:${i.state}`));
    expect(items.sort()).toEqual(['constructor:hasOwnProperty:running', 'valueOf:constructor:running', 'valueOf:toString:running']);
    const again = await cli('plan', root, '--state', state, '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out).steps).toEqual([]);
  });

  it('an upgrade of one of them re-activates that one only (its address is unchanged)', async () => {
    const services = join(work, 'services.yaml');
    const { readFileSync } = await import('node:fs');
    writeFileSync(services, readFileSync(services, 'utf8').replace('valueOf: env-valueOf', 'valueOf: env-valueOf-2'));
    const plan = JSON.parse((await cli('plan', root, '--state', state, '--json')).out);
    expect(plan.changes.map((c: { action: string; name: string; machine: string }) => `${c.action} ${c.name} ${c.machine}`)).toEqual(['upgrade hasOwnProperty constructor']);
    const r = await cli('apply', root, '--state', state, '-q');
    expect(r.code, r.err).toBe(0);
    expect(await ask('127.0.47.11', CLIENT_PORT)).toBe(`env-constructor/propertyIsEnumerable/yes-a-property/env-toString:env-valueOf-2\n`);
  });

  it('destroy stops every one of them', async () => {
    const r = await cli('destroy', root, '--state', state, '-q');
    expect(r.code, r.err).toBe(0);
    await expect(ask('127.0.47.11', CLIENT_PORT)).rejects.toThrow(/ECONNREFUSED/);
    await expect(ask('127.0.47.11', DAEMON_PORT)).rejects.toThrow(/ECONNREFUSED/);
    await expect(ask(net.hosts[0]!.address, SERVER_PORT)).rejects.toThrow(/ECONNREFUSED/);
  });

  it.each([
    ['a machine', 'network.yaml', (t: string) => t.replace('  toString:\n    target: local', '  __proto__:\n    target: local'), '"__proto__" cannot be a key'],
    ['a service', 'services.yaml', (t: string) => t.replace('  toString:\n    type: process', '  __defineGetter__:\n    type: process'), 'expected a safe name'],
    ['an env key', 'services.yaml', (t: string) => t.replace('env: { constructor: env-constructor }', 'env: { __proto__: x }'), '"__proto__" cannot be a key'],
  ])('refuses __proto__ and its kin as %s, with exit 2 and nothing touched', async (_, file, edit, message) => {
    const { readFileSync } = await import('node:fs');
    const path = join(work, file);
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, edit(original));
    try {
      for (const cmd of ['validate', 'plan', 'apply']) {
        const r = await cli(cmd, root, ...(cmd === 'validate' ? [] : ['--state', state]));
        expect(r.code, r.err).toBe(2);
        expect(r.err).toMatch(new RegExp(`${path.replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
        expect(r.err).toContain(message);
      }
    } finally {
      writeFileSync(path, original);
    }
  });
});
