import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Item } from '../../src/manifest/types.ts';
import { FileStateStore } from '../../src/state/fileState.ts';
import { parseActivations, parseHeld, parseLockTaken, parseStatus } from '../../src/targets/answers.ts';
import { parseOtherRecords, parseRecord } from '../../src/targets/recordAnswers.ts';
import { itemSpecFiles } from '../../src/targets/itemSpec.ts';
import type { MachineRecord } from '../../src/targets/runtimeApi.ts';
import { EXIT, FRAME, LAYOUT, LOCK_ARG, MODULE_TYPES, SPEC_FILE, shHeader, TOKEN, VERB_NAMES, VERBS, verbExits, type Verb } from '../../src/targets/runtime/protocol.ts';
import { RUNTIME_PARTS, runtimePartPath, runtimeScript } from '../../src/targets/runtime/script.ts';
import { encodeActivation, encodeSpec, encodeUpload } from '../../src/targets/stream.ts';

// The protocol's conformance: the real runtime (assembled as strata uploads it) is run by
// /bin/sh through every verb, in a temporary root, and each answer is fed to the parser strata
// reads it with; each exit code must be one the protocol table allows for its verb. No root,
// no sshd: the runtime runs as the test's user.
const base = mkdtempSync(join(tmpdir(), 'strata-rt-protocol-'));
const shared = join(base, 'root');
const www = join(base, 'www');
const script = join(base, 'runtime.sh');
writeFileSync(script, runtimeScript().script);
const MACHINE = 'm1';
const exercised = new Set<Verb>();

interface Answer {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(deployment: string, verb: Verb | string, args: string[] = [], input?: Buffer): Answer {
  const r = spawnSync('sh', [script, join(shared, 'deployments', deployment), verb, ...args], { input, timeout: 30_000, env: { ...process.env, STRATA_MIN_FREE_KB: '0' } });
  if (r.error) throw r.error;
  const answer = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
  if (verb in VERBS) {
    exercised.add(verb as Verb);
    expect(verbExits(verb as Verb), `${verb} exited ${answer.code}: ${answer.stderr}`).toContain(answer.code);
  }
  return answer;
}

const text = (a: Answer) => a.stdout.toString();

function item(key: string, module: Item['module'], spec: Item['spec'], artifact?: string): Item {
  return { key, machine: MACHINE, layer: 'service', name: key, module, spec, artifact, dependsOn: [], stateful: false, hash: 'x' };
}

const items = [
  item('f.motd', 'file', { path: join(www, 'site'), allowed: [www] }, 'art1'),
  item('dir.data', 'directory', { path: join(www, 'data'), mode: '750', allowed: [www] }),
  item('s.setup', 'script', { env: { GREETING: "it's here" } }, 'art2'),
  item('s.keeper', 'process', { start: 'echo "$GREETING" >"$STATE_DIR/said"; exec sleep 100000', env: { GREETING: 'hello' } }),
  item('s.broken', 'script', { env: {} }, 'art1'),
];

function record(deployment: string, generation: number): MachineRecord {
  return { deployment, generation, manifestHash: `h${generation}`, machine: { name: MACHINE, address: '127.0.73.1', target: { kind: 'local' }, items: [] } } as unknown as MachineRecord;
}

afterAll(() => {
  for (const key of ['s.keeper']) run('app', 'deactivate', [key]);
  rmSync(base, { recursive: true, force: true });
});

describe('the runtime protocol, spoken by the real runtime', () => {
  it('takes, reports, renews and refuses the lock in the formats the parsers read', () => {
    const taken = run('app', 'lock', ['ctl:abc123', 'tok1', '42', '60', '-', 'art1', 'art2']);
    expect(taken.code).toBe(EXIT.OK);
    expect(parseLockTaken(MACHINE, 'lock', text(taken), ['art1', 'art2'])).toEqual({ missing: ['art1', 'art2'] });

    const refused = run('app', 'lock', ['other:def456', 'tok2', '43', '60']);
    expect(refused.code).toBe(EXIT.LOCKED);
    expect(parseHeld(MACHINE, 'lock', text(refused))).toMatchObject({ owner: 'ctl:abc123', token: 'tok1', pid: 42 });

    expect(run('app', 'renew', ['ctl:abc123', 'tok1', '60']).code).toBe(EXIT.OK);
    const lost = run('app', 'renew', ['other:def456', 'tok2', '60']);
    expect(lost.code).toBe(EXIT.LOCKED);
    expect(parseHeld(MACHINE, 'renew', text(lost))?.owner).toBe('ctl:abc123');

    // Re-taken by its own token, storing artifacts in the same command.
    const upload = encodeUpload([{ hash: 'art1', entries: [{ path: 'index.html', mode: '644', content: Buffer.from('<h1>hi</h1>\n') }] }]);
    const again = run('app', 'lock-upload', ['ctl:abc123', 'tok1', '42', '60', '-', 'art1'], upload);
    expect(again.code, again.stderr).toBe(EXIT.OK);
    expect(parseLockTaken(MACHINE, 'lock-upload', text(again), [])).toEqual({ missing: [] });
    expect(readFileSync(join(shared, 'store/art1/index.html'), 'utf8')).toBe('<h1>hi</h1>\n');
  });

  it('uploads, activates every module type and reports each result framed by length', () => {
    mkdirSync(www, { recursive: true });
    const activateScript = { path: 'activate', mode: '755', content: Buffer.from('echo "$GREETING" >"$STATE_DIR/greeting"\n') };
    const up = run('app', 'upload', ['art2'], encodeUpload([{ hash: 'art2', entries: [activateScript] }]));
    expect(up.code, up.stderr).toBe(EXIT.OK);
    const specs = items.map((i) => encodeSpec(itemSpecFiles(i, '127.0.73.1')));
    const r = run('app', 'activate', items.map((i) => i.key), encodeActivation(specs));
    expect(r.code).toBe(EXIT.FAILED);
    const results = parseActivations(MACHINE, r.stdout, items.map((i) => i.key));
    expect([...results].map(([k, v]) => `${k} ${v.code}`)).toEqual(['f.motd 0', 'dir.data 0', 's.setup 0', 's.keeper 0', 's.broken 1']);
    expect(results.get('s.broken')!.stderr).toContain('the artifact has no "activate" script');
    expect(readFileSync(join(www, 'site/index.html'), 'utf8')).toBe('<h1>hi</h1>\n');
    expect(readFileSync(join(shared, 'deployments/app/state/s.setup/greeting'), 'utf8')).toBe("it's here\n");
  });

  it('reports status, and drift, as parseStatus reads it', () => {
    const ok = parseStatus(MACHINE, text(run('app', 'status')));
    expect(ok.lock).toMatch(/^ctl:abc123 tok1 42 /);
    expect(ok.items.map((i) => `${i.key} ${i.module} ${i.state} ${i.drift ?? 'ok'}`)).toEqual(['dir.data directory present ok', 'f.motd file present ok', 's.keeper process running ok', 's.setup script present ok']);
    writeFileSync(join(www, 'site/index.html'), 'changed');
    const drift = parseStatus(MACHINE, text(run('app', 'status')));
    expect(drift.items.find((i) => i.key === 'f.motd')?.drift).toBe(`file ${join(www, 'site')}/index.html was changed`);
  });

  it('snapshots and restores a STATE_DIR in the stream framing, and refuses an item without state', () => {
    const snap = run('app', 'snapshot', ['s.keeper']);
    expect(snap.code, snap.stderr).toBe(EXIT.OK);
    const lines = text(snap).split('\n');
    expect(lines.slice(0, 2)).toEqual([`${FRAME.file} 6 644 said`, 'hello']);
    expect(lines.at(-2)).toBe(FRAME.endStream);
    expect(run('app', 'restore', ['s.keeper'], snap.stdout).code).toBe(EXIT.OK);
    expect(parseStatus(MACHINE, text(run('app', 'status'))).items.find((i) => i.key === 's.keeper')?.state).toBe('running');
    const none = run('app', 'snapshot', ['f.motd']);
    expect(none.code).toBe(EXIT.FAILED);
    expect(none.stderr).toContain('has no state to snapshot');
  });

  it('records generations, reads them back, and shows other deployments their claims', () => {
    expect(run('app', 'commit', ['1'], Buffer.from(JSON.stringify(record('app', 1)))).code).toBe(EXIT.OK);
    expect(parseRecord(MACHINE, text(run('app', 'manifest')))).toEqual(record('app', 1));
    expect(parseRecord(MACHINE, text(run('app', 'manifest', ['1'])), 1)?.generation).toBe(1);
    const others = parseOtherRecords(MACHINE, run('other', 'claims').stdout);
    expect(others).toEqual([{ deployment: 'app', record: record('app', 1) }]);
    const claimed = run('app', 'claim', [], Buffer.from(JSON.stringify(record('app', 2))));
    expect(claimed.code).toBe(EXIT.OK);
    expect(parseOtherRecords(MACHINE, claimed.stdout)).toEqual([]);
    // The root is laid out as LAYOUT says.
    const app = join(shared, LAYOUT.deployments, 'app');
    for (const p of [join(shared, LAYOUT.store, 'art1'), join(app, LAYOUT.items, 's.keeper'), join(app, LAYOUT.state, 's.keeper'), join(app, LAYOUT.generations, '1.json'), join(app, LAYOUT.lock, 'owner'), join(app, LAYOUT.claimsPending)]) {
      expect(existsSync(p), p).toBe(true);
    }
    expect(parseOtherRecords(MACHINE, run('other', 'claims').stdout).map((o) => `${o.deployment} ${o.pending ?? false}`)).toEqual(['app false', 'app true']);
    expect(run('app', 'uncommit', ['1']).code).toBe(EXIT.OK);
    expect(text(run('app', 'manifest'))).toBe('');
  });

  it('deactivates and unlocks; refuses an unknown verb and unsafe arguments as usage errors', () => {
    for (const i of items) expect(run('app', 'deactivate', [i.key]).code).toBe(EXIT.OK);
    expect(parseStatus(MACHINE, text(run('app', 'status'))).items).toEqual([]);
    expect(run('app', 'unlock', ['other:def456', 'tok2']).code).toBe(EXIT.LOCKED);
    expect(run('app', 'unlock', ['ctl:abc123', 'tok1']).code).toBe(EXIT.OK);
    expect(run('app', 'hello').code).toBe(EXIT.USAGE);
    expect(run('app', 'deactivate', ['../x']).code).toBe(EXIT.USAGE);
    expect(run('app', 'lock', ['a;b']).code).toBe(EXIT.USAGE);
  });

  it('went through every verb of the protocol', () => {
    expect([...exercised].sort()).toEqual([...VERB_NAMES].sort());
  });
});

describe('the runtime script and protocol.ts agree', () => {
  const source = runtimeScript().script.toString();

  it('starts with the sh header made from protocol.ts, whose values sh reads back', () => {
    expect(source.startsWith(shHeader())).toBe(true);
    const r = spawnSync('sh', ['-c', `${shHeader()}\nprintf '%s\\n' "$VERBS" "$VERBS_BUSY" "$VERBS_VIEW" "$EXIT_LOCKED" "$MODULE_TYPES"`]);
    expect(r.stdout.toString().split('\n').slice(0, 5)).toEqual([
      VERB_NAMES.join(' '),
      VERB_NAMES.filter((v) => VERBS[v].busy).join(' '),
      VERB_NAMES.filter((v) => VERBS[v].view).join(' '),
      String(EXIT.LOCKED),
      MODULE_TYPES.join(' '),
    ]);
  });

  it('dispatches every verb of the table, and no other', () => {
    const defined = [...source.matchAll(/^verb_([a-z_]+)\(\)/gm)].map((m) => m[1]).sort();
    expect(defined).toEqual(VERB_NAMES.map((v) => v.replaceAll('-', '_')).sort());
  });

  it('has a file and a verb list for every module type, and none for another', () => {
    for (const type of MODULE_TYPES) expect(RUNTIME_PARTS).toContain(`modules/${type}.sh`);
    expect(RUNTIME_PARTS.filter((p) => p.startsWith('modules/'))).toHaveLength(MODULE_TYPES.length);
    const lists = [...source.matchAll(/^MODULE_([a-z_]+)='([a-z_ ]+)'$/gm)].map((m) => m[1]).sort();
    expect(lists).toEqual(MODULE_TYPES.map((t) => t.replaceAll('-', '_')).sort());
  });

  it('reads the spec files strata writes under the names protocol.ts gives them', () => {
    for (const name of Object.values(SPEC_FILE)) expect(source, name).toMatch(new RegExp(`(\\$d|\\$1)/${name}"|field "\\$(d|1)" ${name}\\b|/${name}"`));
  });

  it('takes the tokens strata makes: item keys, hashes, lock owners', () => {
    for (const key of ['s.hello-world', 'd.postgres', 'f.0123456789abcdef', 'dir.0123456789abcdef']) expect(key).toMatch(TOKEN);
    const identity = new FileStateStore(join(base, 'state')).identity();
    for (const owner of [identity, 'build-host.example:0a1b2c3d4e5f', 'tok-1.2', '42']) expect(owner).toMatch(LOCK_ARG);
    const check = (fn: string, arg: string) => spawnSync('sh', ['-c', `${shHeader()}\n. "$1"\n${fn} "$2"`, 'sh', join(base, 'lib.sh'), arg]).status;
    writeFileSync(join(base, 'lib.sh'), readFileSync(runtimePartPath('lib/base.sh')));
    for (const t of ['s.hello-world', 'a', '_x', '-y', '.hidden', 'a/b', 'a b', '']) expect(check('check_token', t) === 0, t).toBe(TOKEN.test(t));
  });
});
