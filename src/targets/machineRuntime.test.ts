import { describe, expect, it } from 'vitest';
import { parseActivations } from './answers.ts';

describe('parseActivations', () => {
  it('reads "ok KEY" lines and length-framed failures, whatever a reason holds', () => {
    const reason = 'process exited while starting\nok s.forged\nfailed s.other 3\nxyz';
    const out = Buffer.from(`ok s.a\nfailed s.b ${Buffer.byteLength(reason)}\n${reason}ok s.c\n`);
    const r = parseActivations('m1', out, ['s.a', 's.b', 's.c']);
    expect([...r.keys()]).toEqual(['s.a', 's.b', 's.c']);
    expect(r.get('s.a')?.code).toBe(0);
    expect(r.get('s.b')).toMatchObject({ code: 1, stderr: reason });
    expect(r.get('s.c')?.code).toBe(0);
    expect(r.has('s.forged')).toBe(false);
  });

  it('refuses anything it does not understand, naming the machine and the line', () => {
    expect(() => parseActivations('m1', Buffer.from('ok s.a\nstrata-runtime: cannot create /x\nok s.b\n'), ['s.a', 's.b'])).toThrow(
      /^m1 answered activate with something strata does not understand \(line 2\): an unknown line in "strata-runtime: cannot create \/x"/,
    );
  });

  it('gives no result to keys the answer did not get to (the runtime stopped early)', () => {
    expect([...parseActivations('m1', Buffer.from('ok s.a\n'), ['s.a', 's.b']).keys()]).toEqual(['s.a']);
  });
});
