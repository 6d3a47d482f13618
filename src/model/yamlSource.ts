import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
import type { ModelIssue, SourcePos } from '../errors.ts';
import { fastParse } from './fastYaml.ts';
import { nullPrototype } from './table.ts';
import { MAX_MODEL_BYTES, decodeUtf8, forbiddenCharacter, tooDeep, type TextProblem } from './yamlText.ts';

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

/**
 * Parses a model file (its bytes, or text already decoded) into a plain value. Everything that is
 * not plain YAML 1.2 data is an issue with a position, never an exception: bad UTF-8, control
 * characters, files over MAX_MODEL_BYTES, nesting over MAX_DEPTH, aliases that expand too far,
 * tags outside the core schema, keys that are not scalars, duplicate keys, NUL in a string.
 */
export function parseYaml(file: string, input: string | Uint8Array): { source?: YamlSource; issues: ModelIssue[] } {
  const problem = (p: TextProblem) => ({ issues: [{ file, line: p.line, column: p.column, field: '', message: p.message }] });
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_MODEL_BYTES) return problem({ line: 1, column: 1, message: `file is larger than ${MAX_MODEL_BYTES} bytes (${size}); a model file is bounded` });
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    const decoded = decodeUtf8(input);
    if ('problem' in decoded) return problem(decoded.problem);
    text = decoded.text;
  }
  // A byte order mark may open the file (YAML allows it); anywhere else it is refused below.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const bad = forbiddenCharacter(text) ?? tooDeep(text);
  if (bad) return problem(bad);

  const fast = fastParse(text);
  if (fast) return { source: lazySource(file, text, nullPrototype(fast.value ?? {})), issues: [] };
  const { doc, lineCounter } = parseWithPositions(text);
  const at = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { file, line: p.line, column: p.col, field: '' };
  };
  // Warnings are refusals too: an unresolved tag (`!custom`, `!!js/function`, `!!binary`) would
  // otherwise become a plain string.
  const diagnostics = [...doc.errors, ...doc.warnings];
  if (diagnostics.length > 0) return { issues: diagnostics.map((e) => ({ ...at(e.pos[0]), message: `YAML: ${describeDiagnostic(e.code, e.message)}` })) };
  const structural = structureIssues(doc).map(({ offset, message }) => ({ ...at(offset), message }));
  if (structural.length > 0) return { issues: structural };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch {
    const alias = firstAlias(doc);
    return { issues: [{ ...at(alias), message: `YAML: aliases expand too far (more than ${MAX_ALIAS_COUNT} copies); the file looks like an alias bomb` }] };
  }
  return { source: sourceOf(file, nullPrototype(value ?? {}), () => ({ doc, lineCounter })), issues: [] };
}

/** How many nodes aliases may copy in one file (the `yaml` package's measure). */
const MAX_ALIAS_COUNT = 100;

/** Only YAML 1.2, its core schema, and none of the YAML 1.1 tags `yaml` knows by default. */
const PARSE_OPTIONS = { uniqueKeys: true, prettyErrors: false, strict: true, version: '1.2', schema: 'core', resolveKnownTags: false } as const;

function parseWithPositions(text: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, ...PARSE_OPTIONS });
  return { doc, lineCounter };
}

const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

/**
 * What the parser accepts but a model must not hold: a `%YAML` version other than 1.2 (1.1
 * reads `yes` as true), a tag outside the core schema, a key that is not a plain scalar (a
 * collection, an alias or null would become a made-up string), and a NUL in a string (from a
 * `"\0"` escape; no environment variable, argument or path can carry one).
 */
function structureIssues(doc: Document): { offset: number; message: string }[] {
  const out: { offset: number; message: string }[] = [];
  const version = doc.directives?.yaml.explicit ? doc.directives.yaml.version : '1.2';
  if (version !== '1.2') out.push({ offset: 0, message: `YAML: version ${version} is not supported; model files are YAML 1.2` });
  visit(doc, {
    Node(_, node) {
      if (node.tag !== undefined && node.tag !== '!' && !CORE_TAGS.has(node.tag)) out.push({ offset: node.range?.[0] ?? 0, message: `YAML: the tag ${node.tag} is not allowed; only YAML 1.2 core schema tags are` });
    },
    Pair(_, pair) {
      const key = pair.key as Node | null;
      const offset = key?.range?.[0] ?? (pair.value as Node | null)?.range?.[0] ?? 0;
      if (!isScalar(key)) out.push({ offset, message: `YAML: a key must be a plain name, not ${key === null ? 'empty' : isAlias(key) ? 'an alias' : 'a collection'}` });
      else if (key.value === null) out.push({ offset, message: 'YAML: a key must be a plain name, not null (quote it if you mean the word)' });
    },
    Scalar(_, node) {
      if (typeof node.value === 'string' && node.value.includes('\u0000')) out.push({ offset: node.range?.[0] ?? 0, message: 'YAML: a string holds a NUL character ("\\0"), which no name, path, argument or environment value can carry' });
    },
  });
  return out;
}

function firstAlias(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}

function describeDiagnostic(code: string, message: string): string {
  if (code === 'RESOURCE_EXHAUSTION') return 'the file is too complex to parse (nested or aliased too deeply)';
  return firstLine(message);
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

/** The parser repeats the position in its message; the issue carries it already. */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}
