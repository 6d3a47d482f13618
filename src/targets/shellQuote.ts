/**
 * Quotes one word for a POSIX shell: single quotes, with each embedded quote closed,
 * escaped and reopened. The result is always exactly one word, whatever the input.
 */
export function shellQuote(word: string): string {
  if (word.includes('\u0000')) throw new Error('cannot pass a NUL byte to a shell');
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
