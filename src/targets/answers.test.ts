import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StrataError } from '../errors.ts';
import { answerBounds, maxSnapshotBytes } from './answerBounds.ts';
import { parseActivations, parseHeld, parseLockTaken, parseStatus } from './answers.ts';
import { parseRecord } from './recordAnswers.ts';

const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const STATUS = 'generation 3\nlock none\nitem s.web process running 4242 ok\nitem s.db process stopped - drift process 17 is not running\nitem f.abc file present - ok\n';

describe('parseStatus', () => {
  it('reads the generation, the lock and every item', () => {
    expect(parseStatus('m1', STATUS)).toEqual({
      generation: 3,
      lock: null,
      items: [
        { key: 's.web', module: 'process', state: 'running', pid: 4242 },
        { key: 's.db', module: 'process', state: 'stopped', drift: 'process 17 is not running' },
        { key: 'f.abc', module: 'file', state: 'present' },
      ],
    });
    expect(parseStatus('m1', 'generation none\nlock ctl:1 t0 9 1 2\n')).toEqual({ generation: null, lock: 'ctl:1 t0 9 1 2', items: [] });
  });

  it.each([
    ['', /an empty answer/],
    ['generation 3\n', /no "lock" line/],
    ['generation x\nlock none\n', /\(line 1\): expected "generation N"/],
    ['lock none\ngeneration 3\n', /\(line 1\)/],
    ['generation 3\nlock none\nitem s.a process running 1 ok\nitem s.a process running 1 ok\n', /\(line 4\): item s.a is reported twice/],
    ['generation 3\nlock none\nitem ../x process running 1 ok\n', /an item key that is not one/],
    ['generation 3\nlock none\nitem s.a rootkit running 1 ok\n', /an unknown module/],
    ['generation 3\nlock none\nitem s.a process present - ok\n', /a state that is not running or stopped/],
    ['generation 3\nlock none\nitem s.a process running - ok\n', /a running process without a pid/],
    ['generation 3\nlock none\nitem s.a process running 12x ok\n', /a pid that is not a number/],
    ['generation 3\nlock none\nitem s.a process running 1 drift\n', /a verdict that is not "ok" or "drift REASON"/],
    ['generation 3\nlock none\nitem s.a process running 1 ok extra\n', /a verdict that is not/],
    ['generation 3\nlock none\nhello \u001b[2J\n', /\(line 3\): unknown line "hello \\x1b\[2J"/],
    [`generation 3\nlock none\nitem s.a process running 1 drift ${'x'.repeat(9000)}\n`, /a line of 9\d{3} characters/],
  ])('refuses %j', (out, why) => {
    expect(() => parseStatus('m1', out)).toThrow(why);
    try {
      parseStatus('m1', out);
    } catch (e) {
      expect(e).toBeInstanceOf(StrataError);
      expect((e as StrataError).code).toBe('MACHINE_ANSWER_INVALID');
      expect((e as StrataError).data).toMatchObject({ machine: 'm1', verb: 'status' });
      expect((e as Error).message).toMatch(/^m1 answered status with something strata does not understand/);
      expect((e as Error).message).not.toMatch(RAW_CONTROL);
    }
  });

  it('escapes what it passes on: a drift reason or a lock holder with terminal escapes', () => {
    const s = parseStatus('m1', 'generation 1\nlock \u001b]0;pwned\u0007 x\nitem s.a process stopped - drift \u001b[31mred\r\n');
    expect(s.lock).toBe('\\x1b]0;pwned\\x07 x');
    expect(s.items[0]!.drift).toBe('\\x1b[31mred\\x0d');
  });
});

describe('lock answers', () => {
  it('reads a holder and a broken lock, and the missing hashes asked about', () => {
    expect(parseHeld('m1', 'lock', 'held ctl:1 abc 42 100 160 130\n')).toEqual({ owner: 'ctl:1', token: 'abc', pid: 42, takenAt: 100, expiresAt: 160, now: 130 });
    expect(parseHeld('m1', 'renew', '')).toBeUndefined();
    expect(parseLockTaken('m1', 'lock', 'broke expired old t1 - 1 2 3\nmissing h1\n', ['h1', 'h2'])).toEqual({
      broke: { owner: 'old', token: 't1', pid: null, takenAt: 1, expiresAt: 2, now: 3, why: 'expired' },
      missing: ['h1'],
    });
    expect(parseLockTaken('m1', 'lock', '', [])).toEqual({ missing: [] });
  });

  it.each([
    ['held ctl:1 abc 42 100 160\n', /5 fields where a lock has 6/],
    ['held ctl;rm abc 42 100 160 130\n', /an owner or token that is not one/],
    ['held a b c 1 2 3\n', /a pid that is not a number/],
    ['held a b 1 x 2 3\n', /a time that is not seconds/],
    ['held a b 1 1 2 3\nheld a b 1 1 2 3\n', /expected one "held/],
    ['who knows\n', /expected one "held/],
  ])('refuses the holder %j', (out, why) => {
    expect(() => parseHeld('m1', 'lock', out)).toThrow(why);
  });

  it.each([
    ['missing h9\n', /a missing hash that was not asked about/],
    ['broke bored a b 1 1 2 3\n', /a reason that is not "expired" or "dead-owner"/],
    ['broke expired a b 1 1 2 3\nbroke expired a b 1 1 2 3\n', /\(line 2\): an unknown line/],
    ['ok\n', /an unknown line/],
  ])('refuses the taken lock %j', (out, why) => {
    expect(() => parseLockTaken('m1', 'lock', out, ['h1'])).toThrow(why);
  });
});

describe('parseActivations', () => {
  it('refuses a reason framed longer than what follows, a result for a key not asked, and a second result', () => {
    expect(() => parseActivations('m1', Buffer.from('failed s.a 999999\nshort'), ['s.a'])).toThrow(/a reason of 999999 bytes where 5 follow/);
    expect(() => parseActivations('m1', Buffer.from('ok s.x\n'), ['s.a'])).toThrow(/a result for an item it was not asked to activate/);
    expect(() => parseActivations('m1', Buffer.from('ok s.a\nok s.a\n'), ['s.a'])).toThrow(/a second result for one item/);
    expect(() => parseActivations('m1', Buffer.from('ok s.a'), ['s.a'])).toThrow(/a line without its end/);
  });

  it('escapes a reason: a terminal escape in a service log arrives as text', () => {
    const reason = 'boom \u001b[2J\u001b]52;c;AAAA\u0007\n';
    const r = parseActivations('m1', Buffer.from(`failed s.a ${Buffer.byteLength(reason)}\n${reason}`), ['s.a']);
    expect(r.get('s.a')!.stderr).toBe('boom \\x1b[2J\\x1b]52;c;AAAA\\x07\n');
  });
});

const RECORD = {
  deployment: 'hello',
  generation: 2,
  manifestHash: 'abc',
  machine: {
    name: 'm1',
    address: '127.0.0.1',
    target: { kind: 'ssh', host: '127.0.0.1', port: 22, user: 'root', root: '/var/lib/strata' },
    items: [{ key: 's.web', machine: 'm1', layer: 'service', name: 'web', module: 'process', spec: { start: 'sh x', env: { A: '1' } }, dependsOn: [], stateful: false, hash: 'h' }],
  },
};

describe('parseRecord', () => {
  it('reads a MachineRecord, a retired machine and no record', () => {
    expect(parseRecord('m1', JSON.stringify(RECORD))).toEqual(RECORD);
    expect(parseRecord('m1', JSON.stringify({ ...RECORD, machine: null }), 2)).toEqual({ ...RECORD, machine: null });
    expect(parseRecord('m1', '\n')).toBeUndefined();
  });

  it.each([
    ['{"deployment":', /the generation record is not JSON/],
    ['[]', /is not a MachineRecord: \(the record\)/],
    [JSON.stringify({ ...RECORD, generation: '2' }), /is not a MachineRecord: generation: /],
    [JSON.stringify({ ...RECORD, deployment: '../x' }), /deployment: /],
    [JSON.stringify({ ...RECORD, machine: { ...RECORD.machine, items: [{ ...RECORD.machine.items[0], key: '../../etc' }] } }), /machine\.items\.0\.key: /],
    [JSON.stringify({ ...RECORD, machine: { ...RECORD.machine, target: { kind: 'telnet' } } }), /machine\.target\.kind: /],
    [JSON.stringify({ ...RECORD, machine: { ...RECORD.machine, name: 'm2' } }), /the generation record is the one of machine m2/],
    [JSON.stringify({ ...RECORD, machine: { ...RECORD.machine, items: [{ ...RECORD.machine.items[0], name: 'web\u001b[2J' }] } }), /machine\.items\.0\.name: holds control characters/],
  ])('refuses %s', (out, why) => {
    expect(() => parseRecord('m1', out)).toThrow(why);
  });

  it('refuses the record of another generation than the one asked for', () => {
    expect(() => parseRecord('m1', JSON.stringify(RECORD), 1)).toThrow(/asked for generation 1, it sent the record of generation 2/);
  });
});

describe('answer bounds', () => {
  it('gives a snapshot the configured bound, never more than the restore cap; line answers a few MiB', () => {
    expect(maxSnapshotBytes({}, 2 * 1024 ** 3)).toBe(2 * 1024 ** 3);
    expect(maxSnapshotBytes({ STRATA_MAX_SNAPSHOT_BYTES: '1048576' }, 2 * 1024 ** 3)).toBe(1048576);
    expect(maxSnapshotBytes({ STRATA_MAX_SNAPSHOT_BYTES: '99999999999999' }, 2 * 1024 ** 3)).toBe(2 * 1024 ** 3);
    expect(() => maxSnapshotBytes({ STRATA_MAX_SNAPSHOT_BYTES: '1e9' }, 10)).toThrow(/STRATA_MAX_SNAPSHOT_BYTES="1e9" is not a whole number of bytes/);
    expect(() => maxSnapshotBytes({ STRATA_MAX_SNAPSHOT_BYTES: '0' })).toThrow(/at least 1/);
    expect(answerBounds('snapshot', maxSnapshotBytes({ STRATA_MAX_SNAPSHOT_BYTES: '77' })).maxStdoutBytes).toBe(77);
    expect(answerBounds('snapshot').maxStdoutBytes).toBe(2 * 1024 ** 3);
    expect(answerBounds('status', 77).maxStdoutBytes).toBe(4 * 1024 ** 2);
    expect(answerBounds('manifest').maxStdoutBytes).toBe(16 * 1024 ** 2);
  });
});

/** Lines that look like the runtime's, cut, joined and sprinkled with bytes no format holds. */
const fragments = ['generation ', 'none', 'lock ', 'item ', 's.a ', 'process ', 'file ', 'running ', 'stopped ', 'present ', '- ', '42 ', 'ok', 'drift ', 'held ', 'broke ', 'expired ', 'missing ', 'h1', 'failed ', '3', '99', '\n', ' ', '\u001b[31m', '\r', '\u0000', '\u00ff', '\ud800', '{', '}', '"', 'x'];
const answer = fc.oneof(fc.array(fc.constantFrom(...fragments), { maxLength: 40 }).map((a) => a.join('')), fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a).toString('latin1')));

/** Every string in a parsed answer (objects, arrays, Maps), where raw control characters must not be. */
function stringsIn(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (v instanceof Map) return [...v.entries()].flatMap(stringsIn);
  if (v instanceof Buffer) return [];
  if (Array.isArray(v)) return v.flatMap(stringsIn);
  if (typeof v === 'object' && v !== null) return Object.values(v).flatMap(stringsIn);
  return [];
}

/** Calls a parser: it returns text without raw control characters, or throws a StrataError whose message holds none. */
const outcomes = { parsed: 0, refused: 0 };
function survives(parse: () => unknown): void {
  try {
    for (const text of stringsIn(parse())) expect(text).not.toMatch(RAW_CONTROL);
    outcomes.parsed++;
  } catch (e) {
    outcomes.refused++;
    if (!(e instanceof StrataError)) throw e;
    expect(e.code).toBe('MACHINE_ANSWER_INVALID');
    expect(e.message).not.toMatch(RAW_CONTROL);
  }
}

describe('fuzz (seeded): a garbled answer is a StrataError, never a TypeError', () => {
  it('status, lock, activate and manifest answers', () => {
    fc.assert(
      fc.property(answer, (out) => {
        survives(() => parseStatus('m1', out));
        survives(() => parseStatus('m1', `generation 1\nlock none\n${out}`));
        survives(() => parseHeld('m1', 'lock', out));
        survives(() => parseLockTaken('m1', 'lock', out, ['h1']));
        survives(() => parseActivations('m1', Buffer.from(out, 'latin1'), ['s.a', 'h1']));
        survives(() => parseRecord('m1', out));
      }),
      { seed: 9009, numRuns: 3000 },
    );
    // The fuzz reaches both sides: answers that parse (and are checked for raw controls) and refusals.
    expect(outcomes.parsed).toBeGreaterThan(500);
    expect(outcomes.refused).toBeGreaterThan(500);
  });

  it('reasons and holders of any text arrive escaped', () => {
    const anyText = fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).filter((t) => !t.includes('\n') && t.trim() !== '');
    fc.assert(
      fc.property(anyText, anyText, (reason, holder) => {
        const s = parseStatus('m1', `generation 1\nlock ${holder}\nitem s.a process stopped - drift ${reason}\n`);
        expect(s.items[0]!.drift).not.toMatch(RAW_CONTROL);
        expect(s.lock).not.toMatch(RAW_CONTROL);
        const r = parseActivations('m1', Buffer.from(`failed s.a ${Buffer.byteLength(reason)}\n${reason}`), ['s.a']);
        expect(r.get('s.a')!.stderr).not.toMatch(RAW_CONTROL);
      }),
      { seed: 9011, numRuns: 1000 },
    );
  });

  it('mutated records', () => {
    const json = JSON.stringify(RECORD);
    fc.assert(
      fc.property(fc.nat(json.length), fc.nat(json.length), fc.constantFrom(...fragments, '', 'null', '[]', '1e999', '-1'), (at, len, insert) => {
        survives(() => parseRecord('m1', json.slice(0, at) + insert + json.slice(Math.min(json.length, at + (len % 8)))));
      }),
      { seed: 9010, numRuns: 2000 },
    );
  });
});
