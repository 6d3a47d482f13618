import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { ModelIssue, SourcePos } from '../errors.ts';
import { fastParse } from './fastYaml.ts';

export type FieldPath = readonly (string | number)[];

/** One parsed model file: its plain value, and a way back from a field path to a line. */
export interface YamlSource {
  file: string;
  value: unknown;
  /** Position of the node at `path`, or of its nearest ancestor that exists. */
  locate(path: FieldPath): SourcePos;
  /** Whether the file itself holds a node at exactly `path`. */
  has(path: FieldPath): boolean;
}

const MAX_MODEL_BYTES = 4 * 1024 * 1024;

/** Parses YAML text; syntax errors, duplicate keys and binary junk become issues with positions. */
export function parseYaml(file: string, text: string): { source?: YamlSource; issues: ModelIssue[] } {
  if (Buffer.byteLength(text) > MAX_MODEL_BYTES) {
    return { issues: [{ file, line: 1, column: 1, field: '', message: `file is larger than ${MAX_MODEL_BYTES} bytes` }] };
  }
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const pos = positionOf(text, nul);
    return { issues: [{ file, ...pos, field: '', message: 'file contains binary data (a NUL byte); expected YAML text' }] };
  }
  const fast = fastParse(text);
  if (fast) return { source: lazySource(file, text, fast.value ?? {}), issues: [] };
  const { doc, lineCounter } = parseWithPositions(text);
  if (doc.errors.length > 0) {
    return {
      issues: doc.errors.map((e) => {
        const p = lineCounter.linePos(e.pos[0]);
        return { file, line: p.line, column: p.col, field: '', message: `YAML: ${firstLine(e.message)}` };
      }),
    };
  }
  return { source: sourceOf(file, doc.toJS({ maxAliasCount: 100 }) ?? {}, () => ({ doc, lineCounter })), issues: [] };
}

function parseWithPositions(text: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  return { doc: parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true }), lineCounter };
}

/** A file parsed fast: positions are needed only for errors, so `yaml` parses it only then. */
function lazySource(file: string, text: string, value: unknown): YamlSource {
  let parsed: ReturnType<typeof parseWithPositions> | undefined;
  return sourceOf(file, value, () => (parsed ??= parseWithPositions(text)));
}

function sourceOf(file: string, value: unknown, positions: () => { doc: Document; lineCounter: LineCounter }): YamlSource {
  const locateNode = (path: FieldPath): Node | undefined => nodeAt(positions().doc, path);
  return {
    file,
    value,
    has: (path) => locateNode(path) !== undefined,
    locate(path) {
      for (let n = path.length; n >= 0; n--) {
        const node = locateNode(path.slice(0, n));
        if (node?.range) {
          const p = positions().lineCounter.linePos(node.range[0]);
          return { file, line: p.line, column: p.col };
        }
      }
      return { file, line: 1, column: 1 };
    },
  };
}

/** Finds the node at a path; for a map entry it returns the key node, so errors point at the field name. */
function nodeAt(doc: Document, path: FieldPath): Node | undefined {
  let node: unknown = doc.contents;
  if (path.length === 0) return (node as Node) ?? undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) return undefined;
      if (last) return (pair.key as Node) ?? undefined;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      if (node === undefined) return undefined;
      if (last) return node as Node;
    } else {
      return undefined;
    }
  }
  return node as Node;
}

function positionOf(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** The parser repeats the position in its message; the issue carries it already. */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}
