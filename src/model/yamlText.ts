import { Parser, type CST } from 'yaml';
import { fieldName } from './fieldPath.ts';

/**
 * The checks a model file's bytes pass before a YAML parser sees them. Every limit here bounds
 * work or memory an author (or an attacker with commit access) can make strata spend.
 */

/**
 * Larger model files are refused unread: a model is configuration, not data (the benchmark's
 * 10,000 instances on 1,000 machines take 463 KiB in all), and `yaml` needs seconds per MiB
 * of flow collections.
 */
export const MAX_MODEL_BYTES = 2 * 1024 * 1024;
/** Collections nested deeper are refused before either parser recurses into them. */
export const MAX_DEPTH = 64;

/** A problem with a file's text: where (1-based), the field it is in as far as it can be told, and what. */
export interface TextProblem {
  line: number;
  column: number;
  field: string;
  message: string;
}

/**
 * Decodes UTF-8 strictly: the first byte that is not part of a valid UTF-8 sequence (an overlong
 * form, a surrogate, a truncated sequence) is a problem at its line and column, rather than a
 * U+FFFD put silently in its place.
 */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { problem: TextProblem } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes) };
  } catch {
    const bad = firstInvalidUtf8(bytes);
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < bad; i++) {
      if (bytes[i] === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    const before = new TextDecoder('utf-8').decode(bytes.subarray(lineStart, bad));
    const byte = bytes[bad]!.toString(16).toUpperCase().padStart(2, '0');
    // The field is found in the text as a lenient decoder reads it (U+FFFD for what is bad).
    const field = fieldAt(new TextDecoder('utf-8').decode(bytes), new TextDecoder('utf-8').decode(bytes.subarray(0, bad)).length);
    return { problem: { line, column: before.length + 1, field, message: `file is not valid UTF-8 (byte 0x${byte}); model files must be UTF-8 text` } };
  }
}

/** Offset of the first byte of bytes that starts no valid UTF-8 sequence (RFC 3629). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

/**
 * Characters YAML 1.2 does not allow in a stream (outside its printable set: C0 and C1 controls
 * but tab, line feed, carriage return and NEL; DEL; U+FFFE, U+FFFF; lone surrogates), and a byte
 * order mark anywhere but at the very start. Both parsers let some of these through. Also a
 * carriage return without a line feed: js-yaml ends a line there, `yaml` keeps it in a scalar.
 */
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u0084\u0086-\u009F\uFEFF\uFFFE\uFFFF]|\p{Cs}|\r(?!\n)/u;

export function forbiddenCharacter(text: string): TextProblem | undefined {
  const m = FORBIDDEN.exec(text);
  if (!m) return undefined;
  const ch = m[0];
  const code = ch.codePointAt(0)!;
  const name = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const what =
    code === 0
      ? 'binary data (a NUL byte); expected YAML text'
      : code === 0xfeff
        ? 'a byte order mark (U+FEFF) after the start of the file'
        : code === 0x0d
          ? 'a carriage return without a line feed; end lines with LF or CRLF'
          : `the control character ${name}, which YAML does not allow`;
  return { ...positionOf(text, m.index), field: fieldAt(text, m.index), message: `file contains ${what}` };
}

/**
 * The first collection nested more than MAX_DEPTH deep, found on yaml's concrete syntax tree,
 * whose parser keeps its own stack (no recursion), so any depth is safe to measure. The
 * composers of both parsers recurse per level, so they must never see such a file.
 */
export function tooDeep(text: string): TextProblem | undefined {
  const stack: { token: CST.Token; depth: number }[] = [];
  const docs = cstDocuments(text);
  for (const token of docs) {
    if (token.value) stack.push({ token: token.value, depth: 0 });
    while (stack.length > 0) {
      const { token: t, depth } = stack.pop()!;
      if (!isCollection(t)) continue;
      if (depth >= MAX_DEPTH) return { ...positionOf(text, t.offset), field: fieldIn(docs, t.offset), message: `collections are nested more than ${MAX_DEPTH} levels deep` };
      for (const item of t.items) {
        if (item.key) stack.push({ token: item.key, depth: depth + 1 });
        if (item.value) stack.push({ token: item.value, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

type Collection = CST.BlockMap | CST.BlockSequence | CST.FlowCollection;
const isCollection = (t: CST.Token): t is Collection => t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection';

/**
 * The dotted field an offset falls in, read off yaml's concrete syntax tree without recursion
 * (so it is safe on any text, broken or deep): the last entry starting at or before the offset,
 * level by level. '' when the offset is before any entry, or the text is not a document.
 */
export function fieldAt(text: string, offset: number): string {
  return fieldIn(cstDocuments(text), offset);
}

/** The documents of yaml's concrete syntax tree of text (its parser keeps its own stack). */
export function cstDocuments(text: string): CST.Document[] {
  return [...new Parser().parse(text)].filter((t): t is CST.Document => t.type === 'document');
}

/** fieldAt, on documents parsed already. */
export function fieldIn(docs: readonly CST.Document[], offset: number): string {
  const path: (string | number)[] = [];
  const doc = docs.filter((d) => d.offset <= offset).pop();
  let node = doc?.value;
  while (node && isCollection(node) && path.length <= MAX_DEPTH) {
    const start = (item: Collection['items'][number]) => item.key?.offset ?? item.value?.offset ?? item.start[0]?.offset ?? Number.POSITIVE_INFINITY;
    let index = -1;
    node.items.forEach((item, i) => {
      if (start(item) <= offset) index = i;
    });
    const item = node.items[index];
    if (!item) break;
    const isMapEntry = node.type === 'block-map' || (node.type === 'flow-collection' && node.start.source === '{') || item.sep !== undefined;
    path.push(isMapEntry ? keyName(item.key) : index);
    node = item.value && item.value.offset <= offset ? item.value : undefined;
  }
  return fieldName(path);
}

function keyName(key: CST.Token | null | undefined): string {
  if (!key || !('source' in key)) return '?';
  if (key.type === 'scalar') return key.source;
  if (key.type === 'single-quoted-scalar' || key.type === 'double-quoted-scalar') return key.source.slice(1, -1);
  return '?';
}

/** 1-based line and column of a 0-based offset into text. */
export function positionOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}
