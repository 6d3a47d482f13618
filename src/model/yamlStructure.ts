import { isAlias, isCollection, isPair, isScalar, type Document, type Node } from 'yaml';
import { fieldName } from './fieldPath.ts';

/** How many nodes all the aliases of one file may copy together (billion laughs stop here). */
export const MAX_ALIAS_NODES = 100_000;

const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

export interface StructureIssue {
  /** 0-based offset into the text. */
  offset: number;
  /** The field the node is at, dotted, as in every other issue. */
  field: string;
  message: string;
  /** For a tag refused: the tag, as `yaml`'s warning about it names it. */
  tag?: string;
}

/**
 * What `yaml` accepts but a model must not hold, found in one walk of a parsed document (its
 * depth is bounded already, src/model/yamlText.ts):
 * - a `%YAML` version other than 1.2 (1.1 reads `yes` as true);
 * - a tag outside the core schema (`!!js/function`, `!custom`, `!!binary`, `!!set`);
 * - a key that is not a plain scalar (a collection, an alias or null would become a made-up
 *   string, and js-yaml and `yaml` make different ones), or the key `__proto__`, which a schema
 *   record drops silently;
 * - a NUL in a string (from a `"\0"` escape): no name, path, argument or environment value can
 *   carry one;
 * - aliases that together copy more than MAX_ALIAS_NODES nodes, an alias inside the
 *   collection it names, or one whose anchor is not before it.
 */
export function structureIssues(doc: Document, text: string): StructureIssue[] {
  const out: StructureIssue[] = [];
  const version = doc.directives?.yaml.explicit ? doc.directives.yaml.version : '1.2';
  if (version !== '1.2') out.push({ offset: 0, field: '', message: `YAML: version ${version} is not supported; model files are YAML 1.2` });

  // Node counts of anchored nodes once complete; an anchor still open is one an alias inside it names.
  const anchors = new Map<string, Node>();
  const sizes = new Map<Node, number>();
  let copied = 0;
  let bomb = false;
  const offsetOf = (n: Node | null | undefined) => n?.range?.[0] ?? 0;

  const walk = (node: unknown, path: (string | number)[]): number => {
    const push = (offset: number, message: string) => out.push({ offset, field: fieldName(path), message });
    if (bomb || node === null || node === undefined) return 0;
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (!target) {
        push(offsetOf(node), `YAML: the alias *${node.source} names no anchor (&${node.source}) before it`);
        return 0;
      }
      const n = sizes.get(target);
      if (n === undefined) {
        push(offsetOf(node), `YAML: the alias *${node.source} is inside the collection it names`);
        bomb = true;
        return 0;
      }
      copied += n;
      if (copied > MAX_ALIAS_NODES) {
        push(offsetOf(node), `YAML: aliases copy more than ${MAX_ALIAS_NODES} nodes; the file looks like an alias bomb`);
        bomb = true;
      }
      return n;
    }
    const n = node as Node;
    if (n.anchor) anchors.set(n.anchor, n);
    if (n.tag !== undefined && n.tag !== '!' && !CORE_TAGS.has(n.tag)) {
      // The node's range starts after its tag; the issue points at the tag.
      const bang = text.lastIndexOf('!', offsetOf(n));
      const offset = bang > 0 && text[bang - 1] === '!' ? bang - 1 : Math.max(0, bang);
      const shown = n.tag.replace(/^tag:yaml\.org,2002:/, '!!');
      out.push({ offset, field: fieldName(path), message: `YAML: the tag ${shown} is not allowed; only the YAML 1.2 core schema's tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq) are`, tag: n.tag });
    }
    let size = 1;
    if (isScalar(n)) {
      if (typeof n.value === 'string' && n.value.includes('\u0000')) push(offsetOf(n), 'YAML: a string holds a NUL character ("\\0"), which no name, path, argument or environment value can carry');
    } else if (isCollection(n)) {
      n.items.forEach((item, i) => {
        if (isPair(item)) {
          const key = item.key as Node | null;
          const at = key?.range?.[0] ?? offsetOf(item.value as Node | null);
          const name = isScalar(key) && key.value !== null ? String(key.value) : '?';
          if (!isScalar(key)) push(at, `YAML: a key must be a plain name, not ${key === null ? 'empty' : isAlias(key) ? 'an alias' : 'a collection'}`);
          else if (key.value === null) push(at, 'YAML: a key must be a plain name, not null (quote it if you mean the word)');
          else if (key.value === '__proto__') out.push({ offset: at, field: fieldName([...path, name]), message: 'YAML: "__proto__" cannot be a key (JavaScript gives it a meaning of its own)' });
          size += walk(item.key, [...path, name]) + walk(item.value, [...path, name]);
        } else size += walk(item, [...path, i]);
      });
    }
    sizes.set(n, size);
    return size;
  };
  walk(doc.contents, []);
  return out;
}
