import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commandLine, shellQuote } from './shellQuote.ts';

const hostile = ["$(touch /tmp/pwned)", "'; rm -rf / #", 'a\nb', '`id`', '"$HOME"', "it's", '\\', '-n', ''];

describe('shellQuote', () => {
  it('passes every hostile word through sh unchanged, as one argument', () => {
    for (const word of hostile) {
      const out = execFileSync('sh', ['-c', `printf '%s' ${shellQuote(word)}`]).toString();
      expect(out).toBe(word);
    }
  });
  it('keeps words apart', () => {
    const out = execFileSync('sh', ['-c', `for a in ${commandLine(hostile)}; do printf '[%s]' "$a"; done`]).toString();
    expect(out).toBe(hostile.map((w) => `[${w}]`).join(''));
  });
  it('refuses NUL', () => {
    expect(() => shellQuote('a\u0000b')).toThrow(/NUL/);
  });
});
