import jsyaml from 'js-yaml';
import { MAX_DEPTH } from './yamlText.ts';

const { Type, FAILSAFE_SCHEMA } = jsyaml;

/**
 * Plain scalars resolved by YAML 1.2's core schema exactly as the `yaml` package resolves them
 * (its regular expressions and conversions, node_modules/yaml/dist/schema/core), so both
 * parsers give a model the same value.
 */
const scalar = (tag: string, test: RegExp, construct: (s: string) => unknown, predicate: (v: unknown) => boolean) =>
  new Type(tag, { kind: 'scalar', resolve: (s: string | null) => test.test(s ?? ''), construct: (s: string | null) => construct(s ?? ''), predicate });

const CORE_SCHEMA = FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar('tag:yaml.org,2002:null', /^(?:~|[Nn]ull|NULL)?$/, () => null, (v) => v === null),
    scalar('tag:yaml.org,2002:bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T', (v) => typeof v === 'boolean'),
    scalar('tag:yaml.org,2002:int', /^(?:0o[0-7]+|[-+]?[0-9]+|0x[0-9a-fA-F]+)$/, intOf, (v) => Number.isInteger(v)),
    scalar(
      'tag:yaml.org,2002:float',
      /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*))$/,
      floatOf,
      (v) => typeof v === 'number',
    ),
  ],
});

function intOf(s: string): number {
  if (s.startsWith('0o')) return parseInt(s.slice(2), 8);
  if (s.startsWith('0x')) return parseInt(s.slice(2), 16);
  return parseInt(s, 10);
}

function floatOf(s: string): number {
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
  return parseFloat(s);
}

/**
 * Texts the fast path leaves to the precise parser because js-yaml reads them differently or
 * not as safely: aliases (only `yaml` bounds their expansion), directives (`%YAML 1.1` changes
 * how `yaml` reads scalars), explicit keys (`? `), collections where a key may stand (js-yaml
 * turns `[a]: x` into the key "a", `yaml` into "[ a ]"; both are refused there), and a `#`
 * right after a flow collection or a quoted string (a comment to js-yaml, an error to `yaml`).
 */
const PRECISE_ONLY = /\*|^%|(?:^|[\s,[{])\?(?:\s|$)|^[ \t]*(?:-[ \t]+)*[[{]|[[{,][ \t]*[[{]|[\]}"',]#/m;

/**
 * The value of a model file, parsed fast (js-yaml: ~15× faster than `yaml` on large models)
 * when the file is ordinary; undefined when it is not, and the precise parser must decide:
 * any parse error (duplicate keys included), any text PRECISE_ONLY matches, and any value the
 * precise parser would refuse (nested over MAX_DEPTH, a NUL in a string, a key "__proto__", "null" or "",
 * which js-yaml also makes of a null key). Error positions always come from `yaml`
 * (src/model/yamlSource.ts).
 */
export function fastParse(text: string): { value: unknown } | undefined {
  if (PRECISE_ONLY.test(text) || spansLines(text)) return undefined;
  let value: unknown;
  try {
    value = jsyaml.load(text, { schema: CORE_SCHEMA, json: false });
  } catch {
    return undefined;
  }
  return plainEnough(value) ? { value } : undefined;
}

/**
 * Whether a flow collection may continue on another line: js-yaml accepts its later lines at
 * any indentation, `yaml` (as YAML 1.2 says) only indented past the block that holds it.
 * Counted roughly (brackets in quotes and comments count too); declining is always safe.
 */
function spansLines(text: string): boolean {
  let open = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) open++;
    else if (c === 0x5d || c === 0x7d) open--;
    else if (c === 0x0a) {
      if (open !== 0) return true;
    }
  }
  return open !== 0;
}

/** Walks the value without recursion: the depth it checks is the one js-yaml may have exceeded. */
function plainEnough(root: unknown): boolean {
  // Two parallel stacks (value, depth): no array allocated per value.
  const values: unknown[] = [root];
  const depths: number[] = [0];
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return false;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_DEPTH) return false;
    if (Array.isArray(v)) {
      for (const x of v) {
        values.push(x);
        depths.push(depth + 1);
      }
    } else {
      for (const k of Object.keys(v)) {
        if (k === '' || k === 'null' || k === '__proto__' || k.includes('\u0000')) return false;
        values.push((v as Record<string, unknown>)[k]);
        depths.push(depth + 1);
      }
    }
  }
  return true;
}
