/**
 * Model inputs built to crash strata or slip through it (issue 9, section 7): alias bombs,
 * deep nesting, foreign tags, bad UTF-8, control characters, huge files, env keys strata sets,
 * names that give the same variable, shared ports and paths, dangerous runtime roots. Each case
 * is written to real files and given to `strata validate`, `plan` and `apply`: all three exit
 * with 2, print FILE:LINE:COLUMN: FIELD: MESSAGE, and write no state.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.ts';

const NETWORK = 'machines:\n  m1: { address: 127.0.47.31 }\n  m2: { address: 127.0.47.32 }\n';
const SERVICES = [
  'services:',
  '  server:',
  '    type: process',
  '    artifact: server',
  '    start: node server.js',
  '    ports: { main: 18476 }',
  '  client:',
  '    type: process',
  '    start: node client.js',
  '    dependsOn: [server]',
  '',
].join('\n');
const DISTRIBUTION = 'distribution:\n  server: m1\n  client: m2\n';

type File = 'network' | 'services' | 'distribution' | 'strata';
interface Case {
  files: Partial<Record<File, string | Buffer>>;
  /** The file, and the text whose first character the error points at (or an explicit position). */
  at: { file: File; line: number; column: number };
  field: string;
  message: string;
}

/** 1-based line and column of the first `needle` in `text`. */
function pos(file: File, text: string, needle: string, after = ''): Case['at'] {
  const offset = text.indexOf(needle, text.indexOf(after));
  if (offset < 0) throw new Error(`fixture lacks ${needle}`);
  const before = text.slice(0, offset);
  return { file, line: before.split('\n').length, column: offset - before.lastIndexOf('\n') };
}

const withServices = (edit: (s: string) => string) => edit(SERVICES);
const laughs = (indent: string) =>
  [`${indent}l0: &l0 [a, a, a, a, a, a, a, a, a, a]`, ...Array.from({ length: 8 }, (_, i) => `${indent}l${i + 1}: &l${i + 1} [${Array(10).fill(`*l${i}`).join(', ')}]`)].join('\n');
let deepBlock = 'services:\n';
for (let i = 0; i < 1500; i++) deepBlock += `${' '.repeat(i + 2)}a${i}:\n`;
const [beforeBad, afterBad] = SERVICES.split('server.js');
const badUtf8 = Buffer.concat([Buffer.from(`${beforeBad}caf`), Buffer.from([0xc3, 0x28]), Buffer.from(`server.js${afterBad}`)]);

const CASES: Record<string, Case> = {};
const add = (name: string, c: Case) => (CASES[name] = c);

// ---- YAML that exhausts or fools a parser
{
  const text = `${SERVICES}x-bomb:\n${laughs('  ')}\n`;
  // l0..l3 copy 12,330 nodes; each *l3 11,111 more, so the 8th *l3 in l4 passes 100,000.
  add('alias-bomb', { files: { services: text }, at: { file: 'services', line: 16, column: 12 + 7 * 5 }, field: 'x-bomb.l4[7]', message: 'YAML: aliases copy more than 100000 nodes; the file looks like an alias bomb' });
  const root = `${laughs('')}\nname: demo\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n`;
  add('alias-bomb-root-file', { files: { strata: root }, at: { file: 'strata', line: 5, column: 10 + 7 * 5 }, field: 'l4[7]', message: 'aliases copy more than 100000 nodes' });
  const self = withServices((s) => s.replace('    dependsOn: [server]', '    dependsOn: &d [server, *d]'));
  add('alias-inside-its-anchor', { files: { services: self }, at: pos('services', self, '*d'), field: 'services.client.dependsOn[1]', message: 'the alias *d is inside the collection it names' });
}
// `services` is level 0, a0 level 1: a63 (line 65, column 66) is level 64.
add('deep-block-mapping', { files: { services: deepBlock }, at: { file: 'services', line: 65, column: 66 }, field: '', message: 'collections are nested more than 64 levels deep' });
{
  const text = `services: ${'['.repeat(20000)}${']'.repeat(20000)}\n`;
  add('deep-flow-sequence', { files: { services: text }, at: { file: 'services', line: 1, column: 11 + 63 }, field: '', message: 'collections are nested more than 64 levels deep' });
  const maps = `services: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}\n`;
  add('deep-flow-mapping', { files: { services: maps }, at: { file: 'services', line: 1, column: 11 + 63 * 4 }, field: '', message: 'nested more than 64 levels' });
  const seqs = `services:\n  ${'- '.repeat(5000)}x\n`;
  add('deep-block-sequence', { files: { services: seqs }, at: { file: 'services', line: 2, column: 3 + 63 * 2 }, field: '', message: 'nested more than 64 levels' });
}
for (const [name, tag] of [['tag-js-function', '!!js/function'], ['tag-custom', '!custom'], ['tag-binary', '!!binary'], ['tag-timestamp', '!!timestamp']] as const) {
  const text = withServices((s) => s.replace('start: node server.js', `start: ${tag} "node server.js"`));
  add(name, { files: { services: text }, at: pos('services', text, tag), field: 'services.server.start', message: `YAML: the tag ${tag} is not allowed` });
}
{
  const text = withServices((s) => s.replace('ports: { main: 18476 }', 'ports: !!set { main }'));
  add('tag-set', { files: { services: text }, at: pos('services', text, '!!set'), field: 'services.server.ports', message: 'the tag !!set is not allowed' });
  const v11 = `%YAML 1.1\n---\n${SERVICES}`;
  add('yaml-1.1-directive', { files: { services: v11 }, at: { file: 'services', line: 1, column: 1 }, field: '', message: 'YAML: version 1.1 is not supported' });
  const key = withServices((s) => s.replace('  client:', '  ? [client]\n  :'));
  add('collection-key', { files: { services: key }, at: pos('services', key, '[client]'), field: 'services', message: 'a key must be a plain name, not a collection' });
  const nul = withServices((s) => s.replace('  client:', '  ~:'));
  add('null-key', { files: { services: nul }, at: pos('services', nul, '~:'), field: 'services', message: 'a key must be a plain name, not null' });
  const docs = `${SERVICES}---\nservices: {}\n`;
  add('two-documents', { files: { services: docs }, at: pos('services', docs, '---'), field: '', message: 'YAML: Source contains multiple documents' });
  const dup = withServices((s) => s.replace('    ports: { main: 18476 }', '    ports: { main: 18476, "main": 18477 }'));
  add('duplicate-key-quoted', { files: { services: dup }, at: pos('services', dup, '"main"'), field: 'services.server.ports.main', message: 'Map keys must be unique' });
}

// ---- bytes that are not YAML text
add('invalid-utf8', { files: { services: badUtf8 }, at: { file: 'services', line: 5, column: 20 }, field: 'services.server.start', message: 'file is not valid UTF-8 (byte 0xC3)' });
add('utf16-file', { files: { services: Buffer.from(`\ufeff${SERVICES}`, 'utf16le') }, at: { file: 'services', line: 1, column: 1 }, field: '', message: 'file is not valid UTF-8 (byte 0xFF)' });
add('overlong-utf8', { files: { services: Buffer.concat([Buffer.from('services:\n  x'), Buffer.from([0xc0, 0xaf]), Buffer.from(': {}\n')]) }, at: { file: 'services', line: 2, column: 4 }, field: 'services.x\ufffd\ufffd', message: 'not valid UTF-8 (byte 0xC0)' });
{
  const bom = withServices((s) => s.replace('node server.js', 'node\ufeffserver.js'));
  add('byte-order-mark-inside', { files: { services: bom }, at: pos('services', bom, '\ufeff'), field: 'services.server.start', message: 'a byte order mark (U+FEFF) after the start of the file' });
  const esc = withServices((s) => s.replace('node server.js', 'node \u001b[31mserver.js'));
  add('control-character', { files: { services: esc }, at: pos('services', esc, '\u001b'), field: 'services.server.start', message: 'the control character U+001B' });
  const nul = withServices((s) => s.replace('node server.js', 'node\u0000server.js'));
  add('nul-byte', { files: { services: nul }, at: pos('services', nul, '\u0000'), field: 'services.server.start', message: 'binary data (a NUL byte)' });
  const escaped = withServices((s) => s.replace('    dependsOn: [server]', '    dependsOn: [server]\n    env: { SECRET: "a\\0b" }'));
  add('nul-escape-in-env-value', { files: { services: escaped }, at: pos('services', escaped, '"a\\0b"'), field: 'services.client.env.SECRET', message: 'a string holds a NUL character' });
  const huge = `${SERVICES}# ${'x'.repeat(2 * 1024 * 1024)}\n`;
  add('huge-file', { files: { services: huge }, at: { file: 'services', line: 1, column: 1 }, field: '', message: 'file is larger than 2097152 bytes' });
  const scalar = withServices((s) => s.replace('    start: node client.js', `    start: node client.js\n    description: ${'x'.repeat(1024 * 1024)}`));
  add('huge-scalar', { files: { services: scalar }, at: pos('services', scalar, 'description'), field: 'services.client.description', message: 'is too long (at most 65536 characters)' });
}

// ---- names JavaScript gives a meaning
{
  const svc = withServices((s) => s.replace('  client:', '  __proto__:'));
  add('proto-service-name', { files: { services: svc }, at: pos('services', svc, '__proto__'), field: 'services.__proto__', message: '"__proto__" cannot be a key' });
  const env = withServices((s) => s.replace('    dependsOn: [server]', '    dependsOn: [server]\n    env: { __proto__: { a: 1 } }'));
  add('proto-env-key', { files: { services: env }, at: pos('services', env, '__proto__'), field: 'services.client.env.__proto__', message: '"__proto__" cannot be a key' });
  const dist = `${DISTRIBUTION}__proto__: x\n`;
  add('proto-top-level', { files: { distribution: dist }, at: pos('distribution', dist, '__proto__'), field: '__proto__', message: '"__proto__" cannot be a key' });
  const getter = withServices((s) => s.replace('  client:', '  __defineGetter__:'));
  add('define-getter-service-name', { files: { services: getter }, at: pos('services', getter, '__defineGetter__'), field: 'services.__defineGetter__', message: 'expected a safe name' });
}

// ---- environments strata sets
for (const key of ['HOST', 'PORT', 'PORT_MAIN', 'PORT_OTHER', 'STATE_DIR', 'STRATA_SERVICE', 'STRATA_ANYTHING', 'CONTAINER', 'CONTAINER_PORT', 'SERVER_HOST', 'SERVER_PORT', 'SERVER_PORT_MAIN', 'SERVER_ADDRESSES']) {
  const text = withServices((s) => s.replace('    dependsOn: [server]', `    dependsOn: [server]\n    env: { OK: 1, ${key}: x }`));
  add(`env-${key}`, { files: { services: text }, at: pos('services', text, `${key}: x`), field: `services.client.env.${key}`, message: `"${key}"` });
}
{
  const daemon = 'machines:\n  m1:\n    address: 127.0.47.31\n    daemons:\n      kv: { start: node kv.js, env: { HOST: x } }\n  m2: { address: 127.0.47.32 }\n';
  add('env-daemon-HOST', { files: { network: daemon }, at: pos('network', daemon, 'HOST'), field: 'machines.m1.daemons.kv.env.HOST', message: '"HOST" is set by strata' });
  const names = 'services:\n  port:\n    type: process\n    start: node p.js\n  client:\n    type: process\n    start: node c.js\n    ports: { host: 18477 }\n    dependsOn: [port]\n';
  add('port-host-and-dependency-port', { files: { services: names, distribution: 'distribution:\n  port: m1\n  client: m2\n' }, at: pos('services', names, 'port]'), field: 'services.client.dependsOn[0]', message: 'dependency "port" gives the variable PORT_HOST, which port "host"' });
  const prefixes = 'services:\n  db-proxy:\n    type: process\n    start: node a.js\n  db_proxy:\n    type: process\n    start: node b.js\n  client:\n    type: process\n    start: node c.js\n    dependsOn: [db-proxy, db_proxy]\n';
  add('dependencies-same-prefix', { files: { services: prefixes, distribution: 'distribution:\n  db-proxy: m1\n  db_proxy: m1\n  client: m2\n' }, at: pos('services', prefixes, 'db_proxy:'), field: 'services.db_proxy', message: 'both give their address as DB_PROXY_HOST' });
  const ports = withServices((s) => s.replace('ports: { main: 18476 }', 'ports: { a-b: 18476, a_b: 18477 }'));
  add('ports-same-variable', { files: { services: ports }, at: pos('services', ports, 'a_b'), field: 'services.server.ports.a_b', message: 'port "a_b" gives the variable PORT_A_B, which port "a-b"' });
  const ctn = 'machines:\n  m1: { address: 127.0.47.31, containers: { box: { properties: { host: h } } } }\n  m2: { address: 127.0.47.32 }\n';
  const dep = 'services:\n  container:\n    type: process\n    start: node a.js\n  client:\n    type: process\n    start: node c.js\n    dependsOn: [container]\n';
  add('container-property-and-dependency', { files: { network: ctn, services: dep, distribution: 'distribution:\n  container: m2\n  client: { machine: m1, container: box }\n' }, at: pos('network', ctn, 'host: h'), field: 'machines.m1.containers.box.properties.host', message: 'property "host" of container "box" gives the variable CONTAINER_HOST, which dependency "container" (services.client.dependsOn[0]' });
  const badName = withServices((s) => s.replace('    dependsOn: [server]', '    dependsOn: [server]\n    env: { "A-B": x }'));
  add('env-key-not-a-variable', { files: { services: badName }, at: pos('services', badName, '"A-B"'), field: 'services.client.env.A-B', message: 'expected an environment variable name' });
}

// ---- what machines share
{
  const net = 'machines:\n  m1: { address: 127.0.47.31 }\n  m2: { address: 127.0.47.31, ssh: { port: 2222 } }\n';
  const svc = withServices((s) => s.replace('    start: node client.js', '    start: node client.js\n    ports: { main: 18476 }'));
  add('same-address-same-port', { files: { network: net, services: svc }, at: pos('distribution', DISTRIBUTION, 'client'), field: 'distribution.client[0]', message: 'port 18476 on machine "m2" is already used by service "server" (port main) on machine "m1", which has the same address 127.0.47.31' });
  const ssh = withServices((s) => s.replace('main: 18476', 'main: 22'));
  add('port-of-sshd', { files: { services: ssh }, at: pos('distribution', DISTRIBUTION, 'server'), field: 'distribution.server[0]', message: 'port 22 on machine "m1" is where strata reaches it over SSH' });
  const files = 'machines:\n  m1:\n    address: 127.0.47.31\n    allowedPaths: [/srv]\n    files:\n      - { path: /srv/app/conf, content: a }\n      - { path: /srv//app/conf, content: b }\n  m2: { address: 127.0.47.32 }\n';
  add('machine-files-same-path', { files: { network: files }, at: pos('network', files, 'path: /srv//app'), field: 'machines.m1.files[1].path', message: 'places /srv//app/conf, which a machine file of "m1"' });
  const www = 'machines:\n  m1: { target: local, address: 127.0.47.31, allowedPaths: [/tmp/strata-i9-www] }\n  m2: { target: local, address: 127.0.47.32, allowedPaths: [/tmp/strata-i9-www] }\n';
  const fileSvcs = 'services:\n  a:\n    type: file\n    artifact: server\n    path: /tmp/strata-i9-www/site\n  b:\n    type: file\n    artifact: server\n    path: /tmp/strata-i9-www/site\n';
  const two = 'distribution:\n  a: m1\n  b: m2\n';
  add('file-services-same-path-same-host', { files: { network: www, services: fileSvcs, distribution: two }, at: pos('distribution', two, 'b: m2'), field: 'distribution.b[0]', message: 'file service "b" places /tmp/strata-i9-www/site, which file service "a" on machine "m1" (the same host) places too' });
  for (const root of ['/', '/etc', '/usr', '/var/lib']) {
    const text = `machines:\n  m1: { address: 127.0.47.31, root: ${root} }\n  m2: { address: 127.0.47.32 }\n`;
    add(`root-${root === '/' ? 'slash' : root.slice(1).replace('/', '-')}`, { files: { network: text }, at: pos('network', text, `root: ${root}`), field: 'machines.m1.root', message: `"${root}" cannot be the runtime root` });
  }
  const overlap = 'machines:\n  m1: { address: 127.0.47.31, root: /srv/strata, allowedPaths: [/srv] }\n  m2: { address: 127.0.47.32 }\n';
  add('root-inside-allowed-path', { files: { network: overlap }, at: pos('network', overlap, '/srv]'), field: 'machines.m1.allowedPaths[0]', message: '"/srv" overlaps the runtime root /srv/strata' });
  const shared = 'machines:\n  m1: { target: local, address: 127.0.47.31, root: /tmp/strata-i9-root }\n  m2: { target: local, address: 127.0.47.32, root: /tmp/strata-i9-root }\n';
  add('two-machines-one-root', { files: { network: shared }, at: pos('network', shared, 'root', 'm2:'), field: 'machines.m2.root', message: 'machine "m2" has the runtime root /tmp/strata-i9-root on the same host as machine "m1"' });
}

const work = mkdtempSync(join(tmpdir(), 'strata-hostile-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function writeCase(name: string, c: Case): string {
  const dir = join(work, name);
  mkdirSync(join(dir, 'server'), { recursive: true });
  writeFileSync(join(dir, 'server/server.js'), 'console.log("hi");\n');
  const files: Record<File, string | Buffer> = {
    strata: 'name: hostile\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n',
    network: NETWORK,
    services: SERVICES,
    distribution: DISTRIBUTION,
    ...c.files,
  };
  for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, `${f}.yaml`), content);
  return dir;
}

describe('hostile models', () => {
  it('the base deployment they break is valid', async () => {
    const dir = writeCase('control', { files: {}, at: { file: 'strata', line: 1, column: 1 }, field: '', message: '' });
    const r = await cli('validate', join(dir, 'strata.yaml'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('a byte order mark at the start of a file is allowed, as YAML allows it', async () => {
    const dir = writeCase('bom', { files: { services: `\ufeff${SERVICES}` }, at: { file: 'strata', line: 1, column: 1 }, field: '', message: '' });
    const r = await cli('validate', join(dir, 'strata.yaml'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  describe.each(Object.keys(CASES))('%s', (name) => {
    const c = CASES[name]!;
    const dir = writeCase(name, c);
    const root = join(dir, 'strata.yaml');
    it.each([
      ['validate', () => ['validate', root]],
      ['plan', (state: string) => ['plan', root, '--state', state]],
      ['apply', (state: string) => ['apply', root, '--state', state]],
    ] as const)('%s exits with 2 naming file:line:column and the field, and writes nothing', async (_, argv) => {
      const state = mkdtempSync(join(work, 'state-'));
      const r = await cli(...argv(state));
      expect(r.code, r.err).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain('the models are invalid');
      expect(r.err).not.toContain('internal error');
      const at = `${join(dir, `${c.at.file}.yaml`)}:${c.at.line}:${c.at.column}: ${c.field ? `${c.field}: ` : ''}`;
      const start = r.err.indexOf(at);
      expect(start, `stderr lacks ${at}\n${r.err.slice(0, 2000)}`).toBeGreaterThanOrEqual(0);
      const end = r.err.indexOf('\n', start);
      expect(r.err.slice(start, end < 0 ? undefined : end)).toContain(c.message);
      expect(readdirSync(state)).toEqual([]);
    });
  });
});
