import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StateError } from '../errors.ts';
import type { Manifest } from '../manifest/types.ts';
import { FileStateStore } from './fileState.ts';
import type { GenerationRecord } from './records.ts';
import { SnapshotStore } from './snapshots.ts';
import { recordWithoutMachine } from '../apply/abandoned.ts';
import { planTransition } from '../plan/diff.ts';
import { entry, type BeginEntry } from './journal.ts';

const top = mkdtempSync(join(tmpdir(), 'strata-state-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));
let n = 0;
/** A fresh state directory with generations 1..count of deployment `web` recorded. */
function stateWith(count: number): { store: FileStateStore; dep: string } {
  const store = new FileStateStore(join(top, `s${++n}`));
  for (let g = 1; g <= count; g++) store.record('web', rec(g));
  return { store, dep: join(store.dir, 'deployments', 'web') };
}
const manifest = (hash = 'h1'): Manifest => ({
  version: 1,
  deployment: 'web',
  machines: { m1: { name: 'm1', address: '127.0.0.1', target: { kind: 'local' }, items: [] } },
  artifacts: {},
  hash,
});
const rec = (generation: number, hash = `h${generation}`): GenerationRecord => ({ generation, createdAt: '2026-01-01T00:00:00Z', manifest: manifest(hash) });

/** Begins a journal of web's transition from generation 1 to 2 (a plan that changes nothing). */
function beginWeb(store: FileStateStore): BeginEntry {
  const plan = planTransition({ generation: 1, manifest: manifest('h1') }, manifest('h2'));
  const begin = entry.begin({ generation: 2, basis: plan.basis, owner: 'here:1', token: 't1', pid: 1, host: 'here', leaseMs: 60_000, plan, record: { source: 'strata.yaml' } });
  store.beginJournal('web', begin);
  return begin;
}

/** The STATE_CORRUPT error f throws (fails the test if it throws anything else or nothing). */
function corruptionOf(f: () => unknown): StateError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(StateError);
    expect((e as StateError).code).toBe('STATE_CORRUPT');
    expect((e as Error).message).not.toMatch(/SyntaxError|at .*\.ts:\d+/);
    return e as StateError;
  }
  throw new Error('expected STATE_CORRUPT, nothing was thrown');
}

describe('FileStateStore: damaged state is STATE_CORRUPT naming the file', () => {
  it('a truncated generation file', () => {
    const { store, dep } = stateWith(2);
    const file = join(dep, 'generations', '2.json');
    truncateSync(file, 40);
    const e = corruptionOf(() => store.current('web'));
    expect(e.message).toContain(file);
    expect(e.message).toMatch(/not valid JSON \(truncated or damaged\)/);
    expect(e.data.file).toBe(file);
    // history and rollback read every generation: the same error, not a crash
    corruptionOf(() => store.generation('web', 2));
  });

  it('an empty generation file, garbage, and bytes that are not UTF-8', () => {
    const { store, dep } = stateWith(3);
    writeFileSync(join(dep, 'generations', '1.json'), '');
    expect(corruptionOf(() => store.generation('web', 1)).message).toMatch(/1\.json is empty/);
    writeFileSync(join(dep, 'generations', '2.json'), '\u0000\u0001garbage{{{');
    expect(corruptionOf(() => store.generation('web', 2)).message).toMatch(/2\.json is not valid JSON/);
    writeFileSync(join(dep, 'generations', '3.json'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect(corruptionOf(() => store.current('web')).message).toMatch(/3\.json is not UTF-8/);
  });

  it('valid JSON of the wrong shape names the field', () => {
    const { store, dep } = stateWith(1);
    const file = join(dep, 'generations', '1.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    for (const [bad, field] of [
      [{ ...good, manifest: { ...good.manifest, machines: 'm1' } }, 'manifest.machines'],
      [{ ...good, generation: '1' }, 'generation'],
      [{ ...good, manifest: { ...good.manifest, machines: { m1: { ...good.manifest.machines.m1, items: [{ key: 7 }] } } } }, 'manifest.machines.m1.items.0.key'],
      [{ ...good, abandoned: { machine: 'm2', by: 'alice', at: 'x', reason: 'gone', items: 's.db', from: 1 } }, 'abandoned.items'],
      [{ ...good, abandoned: { machine: 'm2', by: 'alice', at: 'x', reason: 'gone', items: [], from: 0 } }, 'abandoned.from'],
      [{ ...good, pendingRestores: { service: 'db' } }, 'pendingRestores'],
      [{ ...good, pendingRestores: [{ service: 'db', module: 'process' }] }, 'pendingRestores.0.machine'],
      [{ ...good, pendingRestores: [{ service: 'db', module: 'process', machine: 'm2', snapshot: { file: '../../etc/x.snap', sha256: 'a'.repeat(64), createdAt: 'x' } }] }, 'pendingRestores.0.snapshot.file'],
      [{ ...good, pendingRestores: [{ service: 'db', module: 'process', machine: 'm2', snapshot: { file: 'a.snap', sha256: 'abc', createdAt: 'x' } }] }, 'pendingRestores.0.snapshot.sha256'],
      [[1, 2, 3], '(the whole file)'],
      [null, '(the whole file)'],
    ] as const) {
      writeFileSync(file, JSON.stringify(bad));
      const e = corruptionOf(() => store.current('web'));
      expect(e.message).toContain(`${file} has the wrong shape: ${field}`);
    }
    // a generation file holding another generation, or another deployment
    writeFileSync(file, JSON.stringify({ ...good, generation: 5 }));
    expect(corruptionOf(() => store.current('web')).message).toMatch(/holds generation 5, not 1/);
    writeFileSync(file, JSON.stringify({ ...good, manifest: { ...good.manifest, deployment: 'shop' } }));
    expect(corruptionOf(() => store.current('web')).message).toMatch(/deployment shop, not web/);
  });

  it('a missing current beside recorded generations is damage, not "nothing deployed"', () => {
    const { store, dep } = stateWith(2);
    unlinkSync(join(dep, 'current'));
    const e = corruptionOf(() => store.current('web'));
    expect(e.message).toContain(join(dep, 'current'));
    expect(e.message).toMatch(/is missing, but generations 1, 2 are recorded/);
    // even with every generation file gone, the high-water mark remembers
    rmSync(join(dep, 'generations'), { recursive: true });
    expect(corruptionOf(() => store.current('web')).message).toMatch(/highest-generation says generation 2 was recorded/);
    // a deployment never recorded is nothing deployed
    expect(store.current('other')).toBeUndefined();
  });

  it('a current that is not a number, or names a generation whose file is gone', () => {
    const { store, dep } = stateWith(2);
    for (const text of ['', 'two\n', '-1\n', '0\n', '1.5\n', '99999999999999999999\n']) {
      writeFileSync(join(dep, 'current'), text);
      expect(corruptionOf(() => store.current('web')).message).toMatch(/does not hold a generation number/);
    }
    writeFileSync(join(dep, 'current'), '7\n');
    expect(corruptionOf(() => store.current('web')).message).toMatch(/names generation 7, but .*7\.json is missing/);
  });

  it('an unreadable state file (a directory in its place, no permission)', () => {
    const { store, dep } = stateWith(1);
    rmSync(join(dep, 'current'));
    mkdirSync(join(dep, 'current'));
    expect(corruptionOf(() => store.current('web')).message).toMatch(/current cannot be read \(EISDIR\)/);
    // generations/ a file, the deployment's directory a file
    const other = stateWith(1);
    rmSync(join(other.dep, 'generations'), { recursive: true });
    writeFileSync(join(other.dep, 'generations'), 'x');
    expect(corruptionOf(() => other.store.generations('web')).message).toMatch(/generations cannot be listed \(ENOTDIR\)/);
    const third = stateWith(0);
    mkdirSync(join(third.store.dir, 'deployments'), { recursive: true });
    writeFileSync(join(third.store.dir, 'deployments', 'web'), 'x');
    expect(corruptionOf(() => third.store.current('web')).message).toMatch(/cannot be read \(ENOTDIR\)/);
  });

  it('a journal with a damaged line is corrupt; only a torn last line (no newline) is left out', () => {
    const { store, dep } = stateWith(1);
    beginWeb(store);
    store.journal('web', entry.step('start', '1'));
    const file = join(dep, 'journal.jsonl');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, `${text}{"v":1,"at":"x","kind":"st`);
    expect(store.readJournal('web').map((e) => e.kind)).toEqual(['begin', 'step']);
    writeFileSync(file, `${text.split('\n')[0]}\n{"at":"x","ev\n${text.split('\n')[1]}\n`);
    expect(corruptionOf(() => store.readJournal('web')).message).toMatch(/journal\.jsonl line 2 is not valid JSON/);
    writeFileSync(file, `${text}{"v":1,"at":"x","kind":"step","status":"start"}\n`);
    expect(corruptionOf(() => store.readJournal('web')).message).toMatch(/line 3 has the wrong shape: step/);
  });

  it('a journal entry of an unknown version or kind is corrupt, naming the file and the line', () => {
    const { store, dep } = stateWith(1);
    beginWeb(store);
    const file = join(dep, 'journal.jsonl');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, `${text}{"v":2,"at":"x","kind":"step","status":"start","step":"1"}\n`);
    expect(corruptionOf(() => store.readJournal('web')).message).toMatch(/journal\.jsonl line 2 is a journal entry of version 2, which this strata does not know/);
    writeFileSync(file, `${text}{"v":"1","at":"x","kind":"step","status":"start","step":"1"}\n`);
    expect(corruptionOf(() => store.readJournal('web')).message).toMatch(/line 2 is a journal entry of version "1"/);
    writeFileSync(file, `${text}{"v":1,"at":"x","kind":"teleport"}\n`);
    expect(corruptionOf(() => store.readJournal('web')).message).toMatch(/journal\.jsonl line 2 is a journal entry of kind "teleport", which this strata does not know/);
  });

  it('a journal of an older strata (entries without a version, `event` for the kind) is read as version 1', () => {
    const { store, dep } = stateWith(1);
    beginWeb(store);
    const file = join(dep, 'journal.jsonl');
    const text = readFileSync(file, 'utf8');
    const { v: _v, kind: _k, plan, ...begin } = JSON.parse(text.split('\n')[0]!);
    const { kind: _pk, ...planOfThen } = plan;
    const old = JSON.stringify({ ...begin, event: 'begin', plan: { ...planOfThen, format: 'strata-plan/1' } });
    writeFileSync(file, `${old}\n{"at":"x","event":"step","status":"start","step":"1"}\n{"at":"x","event":"rollback","steps":["1"]}\n{"at":"x","event":"rollback-incomplete","errors":["e"]}\n`);
    const [first, ...rest] = store.readJournal('web');
    expect(first).toMatchObject({ v: 1, kind: 'begin', plan: { format: 'strata-plan/2', kind: 'transition' } });
    expect(rest).toEqual([
      { v: 1, kind: 'step', at: 'x', status: 'start', step: '1' },
      { v: 1, kind: 'undo-start', at: 'x', steps: ['1'] },
      { v: 1, kind: 'undo-incomplete', at: 'x', errors: ['e'] },
    ]);
  });

  it('journal entries are read back as they were written', () => {
    const { store } = stateWith(1);
    const begin = beginWeb(store);
    const written = [entry.step('start', '1'), entry.undo('1', 'skipped'), entry.commit(2, ['m1']), entry.outcome('committed', 2, 'recovery'), entry.abandon('m1', 'ops', 'gone')];
    for (const e of written) store.journal('web', e);
    expect(store.readJournal('web')).toEqual([begin, ...written]);
  });

  it('a damaged transition lock is not taken over (its holder is unknown)', () => {
    const { store, dep } = stateWith(1);
    writeFileSync(join(dep, 'transition.lock'), '{"pid":');
    expect(corruptionOf(() => store.lockDeployment('web')).message).toContain(join(dep, 'transition.lock'));
    writeFileSync(join(dep, 'transition.lock'), '{"pid":"12"}');
    corruptionOf(() => store.lockDeployment('web'));
  });

  it('damaged controller notes, identity and high-water mark', () => {
    const { store, dep } = stateWith(1);
    writeFileSync(join(dep, 'controller.json'), '{"suspended":"yes"}');
    expect(corruptionOf(() => store.readControllerNotes('web')).message).toMatch(/controller\.json has the wrong shape: suspended/);
    writeFileSync(join(store.dir, 'identity'), 'not hex\n');
    corruptionOf(() => store.identity());
    writeFileSync(join(dep, 'highest-generation'), 'x\n');
    expect(corruptionOf(() => store.nextGeneration('web')).message).toMatch(/highest-generation does not hold a generation number/);
  });

  it('a damaged snapshot sidecar: listed as damaged, never restored', () => {
    const snapshots = new SnapshotStore(join(top, 'snaps'));
    const s = snapshots.save({ deployment: 'web', service: 'db', machine: 'm1', item: 's.db', module: 'process', generation: 1, reason: 'manual' }, Buffer.from('data'));
    writeFileSync(s.file.replace(/\.snap$/, '.json'), '{"format":"strata-snapshot/1"');
    expect(snapshots.list('web', 'db')[0]!.damaged).toMatch(/STATE_CORRUPT|not valid JSON/);
    expect(snapshots.latest('web', 'db')).toBeUndefined();
    expect(() => snapshots.read(s.file)).toThrow(expect.objectContaining({ code: 'SNAPSHOT_SIDECAR_INVALID' }));
  });
});

describe('FileStateStore: a valid state file is read as recorded', () => {
  it('keeps every key, builtin names and a __proto__ key among them', () => {
    const { store, dep } = stateWith(1);
    const file = join(dep, 'generations', '1.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    const item = { key: 's.app', machine: 'constructor', layer: 'service', name: 'app', module: 'process', spec: { start: 'x', ['__proto__']: { a: 1 }, env: { ['__proto__']: 'kept', toString: 'too' } }, dependsOn: [], stateful: false, hash: 'i1' };
    const machines = { constructor: { name: 'constructor', address: '127.0.0.1', target: { kind: 'local' }, items: [item] } };
    // (a computed key is an own property, so JSON.stringify writes it, as strata would have)
    writeFileSync(file, JSON.stringify({ ...good, manifest: { ...good.manifest, machines } }));
    expect(readFileSync(file, 'utf8')).toContain('"env":{"__proto__":"kept","toString":"too"}');
    const read = store.current('web')!.manifest;
    expect(Object.keys(read.machines)).toEqual(['constructor']);
    const spec = read.machines['constructor' as string]!.items[0]!.spec;
    const env = (spec as { env: Record<string, string> }).env;
    expect(Object.hasOwn(env, '__proto__')).toBe(true);
    expect(Object.keys(env)).toEqual(['__proto__', 'toString']);
    // a key a schema's copy would drop (spec is checked as an object): read as recorded
    expect(Object.keys(spec)).toEqual(['start', '__proto__', 'env']);
  });
});

describe('FileStateStore: generation numbers are never reused', () => {
  it('the next number is above every number ever recorded, even after files are deleted', () => {
    const { store, dep } = stateWith(3);
    expect(store.nextGeneration('web')).toBe(4);
    // roll current back by hand and delete the newest files: their numbers stay used
    writeFileSync(join(dep, 'current'), '1\n');
    rmSync(join(dep, 'generations', '3.json'));
    rmSync(join(dep, 'generations', '2.json'));
    expect(store.nextGeneration('web')).toBe(4);
    expect(() => store.record('web', rec(2))).toThrow(/generation number 2 of web was used before \(the highest is 3\)/);
    store.record('web', rec(4));
    expect(store.currentGeneration('web')).toBe(4);
    expect(readFileSync(join(dep, 'highest-generation'), 'utf8')).toBe('4\n');
  });

  it('abandoning a machine records its generation above every number ever used too', () => {
    const { store, dep } = stateWith(3);
    const two: GenerationRecord = { ...rec(4), manifest: { ...manifest('h4'), machines: { ...manifest().machines, m2: { name: 'm2', address: '127.0.0.2', target: { kind: 'local' }, items: [] } } } };
    store.record('web', two);
    // generation 4 is current again by hand, after 5 and 6 were recorded and their files deleted
    store.record('web', rec(5));
    store.record('web', rec(6));
    rmSync(join(dep, 'generations', '5.json'));
    rmSync(join(dep, 'generations', '6.json'));
    writeFileSync(join(dep, 'current'), '4\n');
    const done = recordWithoutMachine(store, 'web', { machine: 'm2', by: 'alice', reason: 'disk died', at: '2026-01-02T00:00:00Z' });
    expect(done?.generation).toBe(7);
    expect(store.current('web')?.generation).toBe(7);
    expect(store.generation('web', 7).abandoned).toMatchObject({ machine: 'm2', from: 4 });
  });

  it('never overwrites an existing generations/N.json', () => {
    const { store, dep } = stateWith(2);
    const before = readFileSync(join(dep, 'generations', '2.json'), 'utf8');
    expect(() => store.record('web', rec(2, 'other'))).toThrow(/recorded already/);
    expect(() => store.record('web', rec(1))).toThrow(/recorded already/);
    expect(readFileSync(join(dep, 'generations', '2.json'), 'utf8')).toBe(before);
  });

  it('completes a record a crash cut short between its file and current (same manifest)', () => {
    const { store, dep } = stateWith(1);
    writeFileSync(join(dep, 'generations', '2.json'), JSON.stringify(rec(2)));
    store.record('web', rec(2));
    expect(store.currentGeneration('web')).toBe(2);
  });

});

describe('FileStateStore.adopt', () => {
  it('records a generation rebuilt from the machines; with replace, over damaged state, never lowering the high-water mark', () => {
    const { store, dep } = stateWith(4);
    expect(() => store.adopt('web', rec(4, 'h4'), false)).toThrow(/recorded already/);
    writeFileSync(join(dep, 'highest-generation'), 'garbage');
    writeFileSync(join(dep, 'current'), '');
    store.adopt('web', rec(2, 'from-machines'), true);
    expect(store.current('web')).toMatchObject({ generation: 2, manifest: { hash: 'from-machines' } });
    // the replaced file is kept aside, the mark is above every number seen, the next number is 5
    expect(readFileSync(join(dep, 'highest-generation'), 'utf8')).toBe('4\n');
    expect(store.nextGeneration('web')).toBe(5);
    const fresh = new FileStateStore(join(top, 'adopt-fresh'));
    fresh.adopt('web', rec(7), false);
    expect(fresh.current('web')?.generation).toBe(7);
    expect(fresh.nextGeneration('web')).toBe(8);
  });
});

describe('FileStateStore.setAsideDamaged', () => {
  it('moves only the damaged files aside, keeping them', () => {
    const { store, dep } = stateWith(3);
    truncateSync(join(dep, 'generations', '2.json'), 10);
    writeFileSync(join(dep, 'transition.lock'), '{');
    writeFileSync(join(dep, 'journal.jsonl'), 'x\n');
    expect(store.setAsideDamaged('web', 'transition.lock')).toEqual([join(dep, 'transition.lock')]);
    const moved = store.setAsideDamaged('web');
    expect(moved.sort()).toEqual([join(dep, 'generations', '2.json'), join(dep, 'journal.jsonl')].sort());
    expect(store.generations('web')).toEqual([1, 3]);
    expect(store.current('web')?.generation).toBe(3);
    expect(readdirSync(join(dep, 'generations')).some((f) => f.startsWith('2.json.damaged-'))).toBe(true);
  });
});
