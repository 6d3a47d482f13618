import { describe, expect, it } from 'vitest';
import { isName, nameProblem, quoteName } from './names.ts';

describe('nameProblem', () => {
  it('accepts the names the models accept', () => {
    for (const n of ['web', 'app-db', 'a_b-9', 'x'.repeat(63), 'toString']) expect(nameProblem(n)).toBeUndefined();
    expect(isName('web')).toBe(true);
  });

  it('says why anything else is not a name', () => {
    const cases: [string, RegExp][] = [
      ['', /it is empty/],
      ['snp/../snp', /path separator/],
      ['/etc', /path separator/],
      ['..', /starts with "."/],
      ['.hidden', /starts with "."/],
      ['a\\b', /path separator/],
      ['a\u0000b', /NUL byte/],
      ['a\nb', /control characters/],
      ['a\u009bb', /control characters/],
      ['x'.repeat(64), /64 characters long/],
      ['1abc', /does not start with a letter/],
      ['a b', /characters other than/],
      ['é', /does not start with a letter/],
    ];
    for (const [n, why] of cases) {
      expect(nameProblem(n)).toMatch(why);
      expect(nameProblem(n)).toMatch(/a name is a letter, then letters, digits/);
      expect(isName(n)).toBe(false);
    }
    expect(isName(undefined)).toBe(false);
  });

  it('quotes a name for a message with control characters escaped and long names cut', () => {
    expect(quoteName('a\u0000\n\u009b')).toBe('"a\\u0000\\n\\u009b"');
    expect(quoteName('x'.repeat(200))).toHaveLength(83);
  });
});
