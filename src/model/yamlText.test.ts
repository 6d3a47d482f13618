import { describe, expect, it } from 'vitest';
import { decodeUtf8, forbiddenCharacter, MAX_DEPTH, positionOf, tooDeep } from './yamlText.ts';

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const problemAt = (b: Uint8Array) => {
  const r = decodeUtf8(b);
  return 'problem' in r ? [r.problem.line, r.problem.column, r.problem.message] : r.text;
};

describe('decodeUtf8', () => {
  it('decodes valid UTF-8, multi-byte and astral characters included', () => {
    expect(decodeUtf8(Buffer.from('a: café 😀 ✓\n'))).toEqual({ text: 'a: café 😀 ✓\n' });
  });

  it('names the line and column (in characters) of the first byte that is not UTF-8', () => {
    expect(problemAt(bytes([0xff], 'a: 1\n'))).toEqual([1, 1, 'file is not valid UTF-8 (byte 0xFF); model files must be UTF-8 text']);
    expect(problemAt(bytes('a: 1\nb: é', [0xc3, 0x28]))).toEqual([2, 5, expect.stringContaining('byte 0xC3')]);
    expect(problemAt(bytes('x\n\ny: ', [0xc0, 0xaf]))).toEqual([3, 4, expect.stringContaining('byte 0xC0')]); // overlong "/"
    expect(problemAt(bytes('x: ', [0xed, 0xa0, 0x80]))).toEqual([1, 4, expect.stringContaining('byte 0xED')]); // a surrogate
    expect(problemAt(bytes('x: ', [0xf4, 0x90, 0x80, 0x80]))).toEqual([1, 4, expect.stringContaining('byte 0xF4')]); // above U+10FFFF
    expect(problemAt(bytes('x: ok\n', [0xe2, 0x82]))).toEqual([2, 1, expect.stringContaining('byte 0xE2')]); // cut off at the end
  });
});

describe('forbiddenCharacter', () => {
  it('allows tab, line ends and printable text, refuses controls, DEL, C1 and a BOM after the start', () => {
    expect(forbiddenCharacter('a:\tb\r\nc: "é ✓ \u0085"\n')).toBeUndefined();
    expect(forbiddenCharacter('a: b\u0000')).toMatchObject({ line: 1, column: 5, message: expect.stringContaining('NUL') });
    expect(forbiddenCharacter('a: b\n\u001b[1m')).toMatchObject({ line: 2, column: 1, message: expect.stringContaining('U+001B') });
    expect(forbiddenCharacter('a: \u007f')).toMatchObject({ message: expect.stringContaining('U+007F') });
    expect(forbiddenCharacter('a: \u009b')).toMatchObject({ message: expect.stringContaining('U+009B') });
    expect(forbiddenCharacter('a: x\ufeff')).toMatchObject({ column: 5, message: expect.stringContaining('byte order mark') });
    expect(forbiddenCharacter('a: \ud800')).toMatchObject({ column: 4 });
    // a lone CR ends a line for js-yaml and not for `yaml`
    expect(forbiddenCharacter('a: {\rb: 1}\r\n')).toMatchObject({ line: 1, column: 5, message: expect.stringContaining('carriage return without a line feed') });
  });
});

describe('tooDeep', () => {
  it(`accepts ${MAX_DEPTH} levels and refuses the next, in block and flow style`, () => {
    expect(tooDeep(`${'['.repeat(MAX_DEPTH)}${']'.repeat(MAX_DEPTH)}`)).toBeUndefined();
    expect(tooDeep(`${'['.repeat(MAX_DEPTH + 1)}${']'.repeat(MAX_DEPTH + 1)}`)).toMatchObject({ line: 1, column: MAX_DEPTH + 1 });
    const block = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' v\n';
    expect(tooDeep(block(MAX_DEPTH))).toBeUndefined();
    expect(tooDeep(block(MAX_DEPTH + 1))).toMatchObject({ line: MAX_DEPTH + 1, column: MAX_DEPTH + 1 });
  });

  it('measures 200,000 levels without overflowing the stack', () => {
    expect(tooDeep('['.repeat(200_000))).toMatchObject({ line: 1, column: MAX_DEPTH + 1 });
  });
});

describe('positionOf', () => {
  it('is 1-based', () => {
    expect(positionOf('ab\ncd', 0)).toEqual({ line: 1, column: 1 });
    expect(positionOf('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});
