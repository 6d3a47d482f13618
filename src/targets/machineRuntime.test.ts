import { describe, expect, it } from 'vitest';
import { parseActivations } from './machineRuntime.ts';

describe('parseActivations', () => {
  it('reads "ok KEY" lines and length-framed failures, whatever a reason holds', () => {
    const reason = 'process exited while starting\nok s.forged\nfailed s.other 3\nxyz';
    const out = Buffer.from(`ok s.a\nfailed s.b ${Buffer.byteLength(reason)}\n${reason}ok s.c\n`);
    const r = parseActivations(out);
    expect([...r.keys()]).toEqual(['s.a', 's.b', 's.c']);
    expect(r.get('s.a')?.code).toBe(0);
    expect(r.get('s.b')).toMatchObject({ code: 1, stderr: reason });
    expect(r.get('s.c')?.code).toBe(0);
    expect(r.has('s.forged')).toBe(false);
  });

  it('stops at anything it does not understand: those keys get no result', () => {
    const r = parseActivations(Buffer.from('ok s.a\nstrata-runtime: cannot create /x\nok s.b\n'));
    expect([...r.keys()]).toEqual(['s.a']);
  });
});
