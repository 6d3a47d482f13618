import { topologicalOrder } from '../lib/graph.ts';
import { itemId, type Item } from '../manifest/types.ts';
import { own } from '../lib/table.ts';
import type { RecordedState } from '../manifest/recorded.ts';
import { PLAN_FORMAT } from './format.ts';
import type { Plan, Step } from './types.ts';

/** An item that differs from its recorded spec on its machine, and how. */
export interface DriftedItem {
  machine: string;
  key: string;
  reason: string;
}

/**
 * A plan that puts drifted items back as the recorded generation has them, and touches
 * nothing else: each drifted item is deactivated (whatever is left of it) and activated
 * again from its recorded spec, dependencies first. It records no new generation: the
 * machines return to the one they have.
 */
export function planRepair(current: RecordedState, drifts: readonly DriftedItem[]): Plan {
  const items = new Map<string, Item>();
  for (const d of drifts) {
    const item = own(current.manifest.machines, d.machine)?.items.find((i) => i.key === d.key);
    if (item) items.set(itemId(item), item);
  }
  const order = topologicalOrder(items.keys(), new Map([...items].map(([id, i]) => [id, i.dependsOn.filter((x) => items.has(x))])));
  const steps: Step[] = [];
  for (const id of [...order].reverse()) steps.push({ id: String(steps.length + 1), phase: 'deactivate', action: 'deactivate', machine: items.get(id)!.machine, item: items.get(id)!, after: [] });
  const activated = new Map<string, string>();
  for (const id of order) {
    const item = items.get(id)!;
    const step: Step = { id: String(steps.length + 1), phase: 'activate', action: 'activate', machine: item.machine, item, after: item.dependsOn.flatMap((x) => (activated.has(x) ? [activated.get(x)!] : [])) };
    activated.set(id, step.id);
    steps.push(step);
  }
  const reasons = new Map(drifts.map((d) => [`${d.machine}/${d.key}`, d.reason]));
  return {
    format: PLAN_FORMAT,
    kind: 'repair',
    deployment: current.manifest.deployment,
    basis: { generation: current.generation, manifestHash: current.manifest.hash },
    generation: current.generation,
    desired: current.manifest,
    changes: [...items.values()].map((i) => ({ action: 'upgrade', layer: i.layer, name: i.name, machine: i.machine, reasons: [`drift: ${reasons.get(itemId(i))}`] })),
    steps,
    uploads: {},
    machines: [...new Set(steps.map((s) => s.machine))].sort(),
  };
}
