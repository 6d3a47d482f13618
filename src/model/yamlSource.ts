import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { ModelError, type ModelIssue, type SourcePos } from '../errors.ts';
import { fastParse } from './fastYaml.ts';
import type { FieldPath } from './fieldPath.ts';
import { structureIssues } from './yamlStructure.ts';
import { MAX_MODEL_BYTES, cstDocuments, decodeUtf8, fieldIn, forbiddenCharacter, tooDeep, type TextProblem } from './yamlText.ts';

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
 * `fast: false` skips js-yaml (the tests check that both parsers agree).
 */
export function parseYaml(file: string, input: string | Uint8Array, opts: { fast?: boolean } = {}): { source?: YamlSource; issues: ModelIssue[] } {
  const problem = (p: TextProblem) => ({ issues: [{ file, line: p.line, column: p.column, field: p.field, message: p.message }] });
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_MODEL_BYTES) return problem({ line: 1, column: 1, field: '', message: `file is larger than ${MAX_MODEL_BYTES} bytes (${size}); a model file is bounded` });
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    const decoded = decodeUtf8(input);
    if ('problem' in decoded) return problem(decoded.problem);
    text = decoded.text;
  }
  // A byte order mark may open the file (YAML allows it); anywhere else it is refused below.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const bad = forbiddenCharacter(text);
  if (bad) return problem(bad);

  // js-yaml declines what it cannot read as `yaml` would, deep nesting included (fastParse).
  const fast = opts.fast === false ? undefined : fastParse(text);
  if (fast) return { source: lazySource(file, text, fast.value ?? {}), issues: [] };
  const deep = tooDeep(text);
  if (deep) return problem(deep);
  const { doc, lineCounter } = parseWithPositions(text);
  const at = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { file, line: p.line, column: p.col, field: '' };
  };
  if (doc.errors.length > 0) {
    const docs = cstDocuments(text);
    return { issues: doc.errors.map((e) => ({ ...at(e.pos[0]), field: fieldIn(docs, e.pos[0]), message: `YAML: ${describeDiagnostic(e.code, e.message)}` })) };
  }
  // Warnings are refusals too: an unresolved tag (`!custom`, `!!js/function`, `!!binary`) would
  // otherwise become a plain string. structureIssues says the same with the field's name.
  const structural = structureIssues(doc, text);
  const warnings = doc.warnings.filter((w) => !(w.code === 'TAG_RESOLVE_FAILED' && structural.some((i) => i.tag !== undefined && w.message.includes(`tag: ${i.tag}`))));
  const issues = [
    ...warnings.map((w) => ({ ...at(w.pos[0]), message: `YAML: ${describeDiagnostic(w.code, w.message)}` })),
    ...structural.map(({ offset, field, message }) => ({ ...at(offset), field, message })),
  ];
  if (issues.length > 0) return { issues };
  // structureIssues bounded what aliases copy, so yaml's own (per-anchor) alias limit is not needed.
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: -1 });
  } catch (e) {
    // Not expected after the checks above; still a model issue, never an internal error.
    return { issues: [{ file, line: 1, column: 1, field: '', message: `YAML: ${firstLine(String((e as Error)?.message ?? e))}` }] };
  }
  return { source: sourceOf(file, value ?? {}, () => ({ doc, lineCounter })), issues: [] };
}

/**
 * The one entry point for a YAML file strata reads that is not a model (the controller's
 * configuration, a network file `strata testnet` reads): parseYaml's parser and limits, its
 * issues thrown as a ModelError with file:line:column.
 */
export function parseYamlFile(file: string, input: string | Uint8Array): YamlSource {
  const { source, issues } = parseYaml(file, input);
  if (!source) throw new ModelError(issues);
  return source;
}

/** Only YAML 1.2, its core schema, and none of the YAML 1.1 tags `yaml` knows by default. */
const PARSE_OPTIONS = { uniqueKeys: true, prettyErrors: false, strict: true, version: '1.2', schema: 'core', resolveKnownTags: false } as const;

function parseWithPositions(text: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, ...PARSE_OPTIONS });
  return { doc, lineCounter };
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
      const pair = pairOf(node, String(seg));
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

/** Key → first pair with that scalar key, per map: a plan locates every claim, so no scan of a map per lookup. */
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

/** The first pair of `map` whose key is a scalar that reads as `key` (as a linear search finds it). */
function pairOf(map: YAMLMap, key: string): Pair | undefined {
  if (map.items.length < 16) return map.items.find((it) => isScalar(it.key) && String(it.key.value) === key);
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const it of map.items) {
      if (!isScalar(it.key)) continue;
      const k = String(it.key.value);
      if (!index.has(k)) index.set(k, it);
    }
    pairIndex.set(map, index);
  }
  return index.get(key);
}

/** The parser repeats the position in its message; the issue carries it already. */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}
