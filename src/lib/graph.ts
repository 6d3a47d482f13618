/**
 * Pure directed-graph helpers shared by model validation and planning. Nodes are strings; an
 * edge a → b means "a depends on b". Iteration order is sorted, so results are deterministic.
 */
export type Edges = ReadonlyMap<string, readonly string[]>;

/** Returns one cycle as a closed path (first node repeated at the end), or undefined. */
export function findCycle(nodes: Iterable<string>, edges: Edges): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    const s = state.get(n);
    if (s === 'done') return undefined;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'visiting');
    stack.push(n);
    for (const m of [...(edges.get(n) ?? [])].sort()) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of [...nodes].sort()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

/** Dependencies before dependents; ties broken by name. Throws on a cycle. */
export function topologicalOrder(nodes: Iterable<string>, edges: Edges): string[] {
  const all = [...new Set(nodes)].sort();
  const members = new Set(all);
  const cycle = findCycle(all, edges);
  if (cycle) throw new Error(`dependency cycle: ${cycle.join(' -> ')}`);
  const out: string[] = [];
  const done = new Set<string>();
  const visit = (n: string) => {
    if (done.has(n)) return;
    done.add(n);
    for (const m of [...(edges.get(n) ?? [])].sort()) if (members.has(m)) visit(m);
    out.push(n);
  };
  for (const n of all) visit(n);
  return out;
}
