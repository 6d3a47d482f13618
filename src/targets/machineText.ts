/**
 * Text that came from a machine (a command's stderr, a reason in an answer) is shown to people
 * only through here: control characters are escaped, so a terminal escape sequence or a carriage
 * return in it never reaches a terminal or a log raw, and it is cut to a bound.
 */

/** How much of a machine's error output a message keeps (head and tail). */
export const SHOWN_TEXT_CHARS = 16 * 1024;

// C0 controls but tab and newline, DEL, C1 controls, and the bidirectional and line separator
// characters that reorder or break what a terminal shows.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** `s` with every control character (but `\n` and `\t`, or all of them when `oneLine`) written as `\xNN` or `\u{N}`. */
export function escapeControls(s: string, oneLine = false): string {
  const re = oneLine ? /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g : CONTROL;
  return s.replace(re, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/**
 * A machine's bytes as text fit to show: decoded as UTF-8 (invalid bytes become U+FFFD), longer
 * than `maxChars` cut to its head and tail around a note of how much was left out, then escaped.
 */
export function machineText(bytes: Buffer | string, maxChars = SHOWN_TEXT_CHARS, oneLine = false): string {
  const s = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  if (s.length <= maxChars) return escapeControls(s, oneLine);
  const half = Math.floor(maxChars / 2);
  const left = s.length - 2 * half;
  return `${escapeControls(s.slice(0, half), oneLine)} […${left} characters left out…] ${escapeControls(s.slice(s.length - half), oneLine)}`;
}

/** A short excerpt of a bad answer for an error message: one line, at most `max` characters, escaped. */
export function excerpt(s: string, max = 120): string {
  const cut = s.length > max ? `${s.slice(0, max)}…` : s;
  return `"${escapeControls(cut, true)}"`;
}
