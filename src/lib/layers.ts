/**
 * The layer order of src/ (docs/architecture.md draws it and says what lives where). Each row
 * is one layer; a module may import its own layer and the rows above it, never a row below.
 * Within a layer imports are free but acyclic. An entry names a directory under src/ or a
 * top-level file without its extension (so "errors" covers src/errors.ts and src/errors/).
 * test/layers.test.ts checks every import of src/ against this table.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['lib'],
  ['errors'],
  ['model'],
  ['manifest'],
  ['plan'],
  ['tree', 'artifact'],
  ['state'],
  ['targets'],
  ['apply'],
  ['git'],
  ['api'],
  ['controller'],
  ['testnet'],
  ['cli'],
];

/** An import: `from` and `to` are paths relative to src/, such as "plan/diff.ts". */
export interface ImportEdge {
  from: string;
  to: string;
}

export interface LayerReport {
  /** Files that belong to no layer of the table. */
  unplaced: string[];
  /** Imports from a layer to one below it, as "a.ts -> b.ts (layer a imports layer b)". */
  backward: string[];
  /** Each cycle among files as a closed path "a.ts -> b.ts -> a.ts", one per tangle. */
  cycles: string[];
}

/** The row of `file` (a path relative to src/) in `layers`, or undefined. */
export function layerIndex(file: string, layers: readonly (readonly string[])[] = LAYERS): number | undefined {
  const head = file.split('/')[0]!.replace(/\.[cm]?[jt]s$/, '');
  const row = layers.findIndex((names) => names.includes(head));
  return row < 0 ? undefined : row;
}

/** Checks `files` and their `edges` against `layers`; pure, so the checker itself is tested. */
export function checkLayers(files: readonly string[], edges: readonly ImportEdge[], layers: readonly (readonly string[])[] = LAYERS): LayerReport {
  const unplaced = files.filter((f) => layerIndex(f, layers) === undefined).sort();
  const backward: string[] = [];
  for (const { from, to } of edges) {
    const a = layerIndex(from, layers);
    const b = layerIndex(to, layers);
    if (a !== undefined && b !== undefined && b > a) {
      backward.push(`${from} -> ${to} (layer ${layers[a]!.join('/')} imports layer ${layers[b]!.join('/')})`);
    }
  }
  return { unplaced, backward: backward.sort(), cycles: findCycles(files, edges).map((c) => c.join(' -> ')) };
}

/** One closed path per strongly connected component with more than one file (or a self-import). */
export function findCycles(files: readonly string[], edges: readonly ImportEdge[]): string[][] {
  const out = new Map<string, string[]>();
  for (const f of files) out.set(f, []);
  for (const { from, to } of edges) out.get(from)?.push(to);
  const cycles: string[][] = [];
  for (const component of stronglyConnected([...out.keys()].sort(), out)) {
    const members = new Set(component);
    const start = component[0]!;
    if (component.length === 1 && !out.get(start)!.includes(start)) continue;
    cycles.push(pathBack(start, members, out));
  }
  return cycles;
}

/** Tarjan's algorithm; each component's files sorted. */
function stronglyConnected(nodes: readonly string[], out: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (n: string) => {
    index.set(n, index.size);
    low.set(n, index.get(n)!);
    stack.push(n);
    onStack.add(n);
    for (const m of out.get(n) ?? []) {
      if (!out.has(m)) continue;
      if (!index.has(m)) {
        visit(m);
        low.set(n, Math.min(low.get(n)!, low.get(m)!));
      } else if (onStack.has(m)) low.set(n, Math.min(low.get(n)!, index.get(m)!));
    }
    if (low.get(n) !== index.get(n)) return;
    const component: string[] = [];
    let m: string;
    do {
      m = stack.pop()!;
      onStack.delete(m);
      component.push(m);
    } while (m !== n);
    components.push(component.sort());
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return components;
}

/** A shortest closed path from `start` back to itself inside one component (breadth first). */
function pathBack(start: string, members: ReadonlySet<string>, out: ReadonlyMap<string, readonly string[]>): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const n = queue.shift()!;
    for (const m of [...(out.get(n) ?? [])].sort()) {
      if (!members.has(m)) continue;
      if (m === start) {
        const path = [n];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(m) && m !== start) {
        previous.set(m, n);
        queue.push(m);
      }
    }
  }
  return [start, start];
}
