import type { Item, Manifest, PostgresqlDatabaseSpec } from '../manifest/types.ts';
import { itemId } from '../manifest/types.ts';
import { topologicalOrder } from '../lib/graph.ts';
import { bindingAddressKeys, bindingPrefix } from '../manifest/bindingEnv.ts';
import type { PendingRestore, RecordedState } from '../manifest/recorded.ts';
import type { Change, Plan, Step, StepPhase } from './types.ts';
import { own, table } from '../lib/table.ts';
import { PLAN_FORMAT } from './format.ts';

/**
 * Diffs the recorded manifest against the desired one. Items with an unchanged hash are left
 * alone; a changed item is deactivated and activated again. Phases run in order
 * (infrastructure, deactivate, activate, cleanup); within one, a step waits only for the
 * steps named in its `after`.
 */
export function planTransition(recorded: RecordedState | undefined, desired: Manifest, kind: 'transition' | 'rollback' | 'destroy' = 'transition'): Plan {
  const before = itemsById(recorded?.manifest);
  const after = itemsById(desired);
  const added: Item[] = [];
  const removed: Item[] = [];
  const upgraded: { from: Item; to: Item }[] = [];
  for (const [id, to] of after) {
    const from = before.get(id);
    if (!from) added.push(to);
    else if (from.hash !== to.hash) upgraded.push({ from, to });
  }
  for (const [id, from] of before) if (!after.has(id)) removed.push(from);
  const moves = pairMoves(added, removed);
  const { restores, pending } = restoresOfLostData(added, moves, recorded?.pendingRestores ?? []);

  const steps = orderSteps(before, after, [
    ...upgraded.filter((u) => u.to.layer === 'infrastructure').flatMap((u) => [step('infrastructure', 'deactivate', u.from), step('infrastructure', 'activate', u.to)]),
    ...added.filter((i) => i.layer === 'infrastructure').map((i) => step('infrastructure', 'activate', i)),
    ...statefulSteps(removed, upgraded, moves),
    ...[...restores].map(([to, p]) => ({ ...step('activate', 'restore', to), ...(p.snapshot ? { snapshot: p.snapshot.file } : {}) })).filter((d) => d.snapshot),
    ...[...removed, ...upgraded.map((u) => u.from)].filter((i) => i.layer === 'service').map((i) => step('deactivate', 'deactivate', i)),
    ...[...added, ...upgraded.map((u) => u.to)].filter((i) => i.layer === 'service').map((i) => step('activate', 'activate', i)),
    ...removed.filter((i) => i.layer === 'infrastructure').map((i) => step('cleanup', 'deactivate', i)),
  ]);

  const uploads = uploadsFor(recorded?.manifest, desired, steps);
  const machines = [...new Set([...steps.map((s) => s.machine), ...Object.keys(uploads)])].sort();
  return {
    format: PLAN_FORMAT,
    kind,
    deployment: desired.deployment,
    basis: { generation: recorded?.generation ?? null, manifestHash: recorded?.manifest.hash ?? null },
    generation: (recorded?.generation ?? 0) + 1,
    desired,
    changes: describeChanges(added, removed, upgraded, moves, restores),
    steps,
    uploads,
    machines,
    ...(pending.length ? { pendingRestores: pending } : {}),
  };
}

/**
 * Stateful services whose data was lost with an abandoned machine and that this plan places
 * again (added, not moved from a machine that still has them): each is restored from the
 * snapshot recorded when the machine was abandoned, the first instance placed for each lost one.
 * The rest stay pending.
 */
function restoresOfLostData(added: Item[], moves: Map<Item, Item>, lost: readonly PendingRestore[]): { restores: Map<Item, PendingRestore>; pending: PendingRestore[] } {
  const restores = new Map<Item, PendingRestore>();
  const pending: PendingRestore[] = [];
  if (lost.length === 0) return { restores, pending };
  const candidates = added.filter((i) => i.layer === 'service' && i.stateful && !moves.has(i));
  for (const p of lost) {
    const to = candidates.find((i) => i.name === p.service && i.module === p.module && !restores.has(i));
    if (to) restores.set(to, p);
    else pending.push(p);
  }
  return { restores, pending };
}

/** A plan with nothing to do on any machine. */
export function isEmptyPlan(plan: Plan): boolean {
  return plan.steps.length === 0 && plan.basis.manifestHash === plan.desired.hash;
}

/** A step before ordering; a restore names its snapshot by node key (`snapshot:machine/key`) until ids exist. */
type Draft = Omit<Step, 'id' | 'after' | 'source'> & { sourceKey?: string };

function step(phase: StepPhase, action: Step['action'], item: Item): Draft {
  return { phase, action, machine: item.machine, item };
}

const nodeKey = (d: Draft) => `${d.action}:${itemId(d.item)}`;

/**
 * Services that leave one machine and arrive on another in this plan: arriving instance →
 * leaving instance, paired by service name (the first leaving instance for the first arriving).
 */
function pairMoves(added: Item[], removed: Item[]): Map<Item, Item> {
  const leaving = new Map<string, Item[]>();
  for (const i of removed) if (i.layer === 'service') leaving.set(i.name, [...(leaving.get(i.name) ?? []), i]);
  const moves = new Map<Item, Item>();
  for (const to of added) {
    const from = to.layer === 'service' ? leaving.get(to.name)?.shift() : undefined;
    if (from) moves.set(to, from);
  }
  return moves;
}

/**
 * Where a stateful item keeps its data: a database is in its server (host, port, name), any
 * other item in its STATE_DIR on its machine. Data whose place changes has to be carried over.
 */
export function dataLocation(item: Item): string {
  if (item.module === 'postgresql-database') {
    const spec = item.spec as PostgresqlDatabaseSpec;
    return `postgresql://${spec.env.PGHOST}:${spec.env.PGPORT}/${spec.database}`;
  }
  return `${item.machine}/${item.key}`;
}

/**
 * The snapshot and restore steps that keep a stateful service's data (docs/reliability.md,
 * "The transition and what it promises", 3: no data lost when a stateful service moves). A stateful service whose data changes place (moved, or a database
 * put into another server) is snapshotted before it is deactivated where it was, and the
 * snapshot is restored after it is activated where it goes, before its dependents start. A
 * removed stateful service is snapshotted before it is deactivated, and the snapshot is kept.
 */
function statefulSteps(removed: Item[], upgraded: { from: Item; to: Item }[], moves: Map<Item, Item>): Draft[] {
  const drafts: Draft[] = [];
  const carry = (from: Item, to: Item | undefined) => {
    const snapshot = step('deactivate', 'snapshot', from);
    drafts.push(snapshot);
    if (to?.stateful && to.module === from.module) drafts.push({ ...step('activate', 'restore', to), sourceKey: nodeKey(snapshot) });
  };
  const moved = new Set(moves.values());
  for (const [to, from] of moves) if (from.stateful && dataLocation(from) !== dataLocation(to)) carry(from, to);
  for (const { from, to } of upgraded) if (from.layer === 'service' && from.stateful && dataLocation(from) !== dataLocation(to)) carry(from, to);
  for (const from of removed) if (from.layer === 'service' && from.stateful && !moved.has(from)) carry(from, undefined);
  return drafts;
}

const PHASES: StepPhase[] = ['infrastructure', 'deactivate', 'activate', 'cleanup'];

/**
 * Orders the steps of each phase along the dependency graph: activations after the
 * activations of what they depend on, deactivations after those of their dependents, and an
 * item's deactivation before its own re-activation.
 */
function orderSteps(before: Map<string, Item>, after: Map<string, Item>, drafts: Draft[]): Step[] {
  const out: Step[] = [];
  const idOf = new Map<string, string>();
  const dependentsBefore = reverseEdges(before);
  for (const phase of PHASES) {
    const inPhase = new Map(drafts.filter((d) => d.phase === phase).map((d) => [nodeKey(d), d]));
    const edges = new Map<string, string[]>();
    for (const [k, d] of inPhase) {
      const id = itemId(d.item);
      const dependents = (dependentsBefore.get(id) ?? []).map((x) => `deactivate:${x}`);
      // A snapshot is taken once the dependents have stopped writing, and before the item stops;
      // an item's dependents start after its restore, on the restored data.
      const deps =
        d.action === 'activate'
          ? [...d.item.dependsOn.flatMap((x) => [`activate:${x}`, `restore:${x}`]), `deactivate:${id}`]
          : d.action === 'restore'
            ? [`activate:${id}`]
            : d.action === 'snapshot'
              ? dependents
              : [...dependents, `snapshot:${id}`];
      edges.set(k, deps.filter((x) => inPhase.has(x)));
    }
    for (const k of topologicalOrder(inPhase.keys(), edges)) {
      const { sourceKey, ...d } = inPhase.get(k)!;
      const id = String(out.length + 1);
      idOf.set(k, id);
      const source = sourceKey === undefined ? undefined : idOf.get(sourceKey);
      out.push({ id, ...d, after: (edges.get(k) ?? []).map((x) => idOf.get(x)!).sort((a, b) => Number(a) - Number(b)), ...(source ? { source } : {}) });
    }
  }
  return out;
}

function reverseEdges(items: Map<string, Item>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [id, item] of items) {
    for (const dep of item.dependsOn) {
      const list = out.get(dep) ?? [];
      list.push(id);
      out.set(dep, list);
    }
  }
  return out;
}

function itemsById(m: Manifest | undefined): Map<string, Item> {
  const out = new Map<string, Item>();
  for (const machine of Object.values(m?.machines ?? {})) for (const item of machine.items) out.set(itemId(item), item);
  return out;
}

function uploadsFor(recorded: Manifest | undefined, desired: Manifest, steps: Step[]): Plan['uploads'] {
  const out: Plan['uploads'] = table();
  const had = new Map<string, Set<string>>();
  for (const m of Object.values(recorded?.machines ?? {})) had.set(m.name, new Set(m.items.flatMap((i) => (i.artifact ? [i.artifact] : []))));
  for (const s of steps) {
    const hash = s.item.artifact;
    if (s.action !== 'activate' || !hash || had.get(s.machine)?.has(hash)) continue;
    const list = (own(out, s.machine) ?? (out[s.machine] = []));
    if (!list.some((u) => u.hash === hash)) list.push({ hash, size: own(desired.artifacts, hash)?.size ?? 0 });
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function describeChanges(added: Item[], removed: Item[], upgraded: { from: Item; to: Item }[], moves: Map<Item, Item>, restores: Map<Item, PendingRestore>): Change[] {
  const changes: Change[] = upgraded.map(({ from, to }) => {
    const reasons = reasonsFor(from, to);
    if (from.layer === 'service' && from.stateful && dataLocation(from) !== dataLocation(to)) reasons.push('its data moves to the new server: snapshot, restore');
    return { action: 'upgrade', layer: to.layer, name: to.name, machine: to.machine, reasons };
  });
  // A service that leaves one machine and arrives on another in the same plan has moved.
  const moved = new Set(moves.values());
  for (const to of added) {
    const from = moves.get(to);
    if (from) {
      const reasons = [`moved from ${from.machine} to ${to.machine}`];
      if (from.stateful && dataLocation(from) !== dataLocation(to)) reasons.push(to.stateful && to.module === from.module ? `its data moves: snapshot on ${from.machine}, restore on ${to.machine}` : `its data is snapshotted on ${from.machine}`);
      changes.push({ action: 'move', layer: to.layer, name: to.name, machine: to.machine, from: from.machine, reasons });
    } else if (restores.has(to)) {
      const p = restores.get(to)!;
      const reasons = [`its machine ${p.machine} was abandoned`];
      reasons.push(p.snapshot ? `its data is restored from the snapshot taken ${p.snapshot.createdAt}` : `no snapshot of its data was kept: it starts empty`);
      changes.push({ action: 'add', layer: to.layer, name: to.name, machine: to.machine, reasons });
    } else {
      changes.push({ action: 'add', layer: to.layer, name: to.name, machine: to.machine, reasons: ['new'] });
    }
  }
  for (const from of removed) {
    if (moved.has(from)) continue;
    const reasons = ['no longer in the models'];
    if (from.layer === 'service' && from.stateful) reasons.push('its data is snapshotted first');
    changes.push({ action: 'remove', layer: from.layer, name: from.name, machine: from.machine, reasons });
  }
  const layerRank = (c: Change) => (c.layer === 'infrastructure' ? 0 : 1);
  return changes.sort((a, b) => layerRank(a) - layerRank(b) || cmp(a.name, b.name) || cmp(a.machine, b.machine));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Says what differs between two versions of an item, naming moved dependencies. */
export function reasonsFor(from: Item, to: Item): string[] {
  const reasons: string[] = [];
  if (from.artifact !== to.artifact) reasons.push('artifact changed');
  if (from.module !== to.module) reasons.push(`type changed from ${from.module} to ${to.module}`);
  if (from.container !== to.container) reasons.push(`container changed to ${to.container ?? 'none'}`);
  const envA = (from.spec as { env?: Record<string, string> }).env ?? {};
  const envB = (to.spec as { env?: Record<string, string> }).env ?? {};
  const changedEnv = [...new Set([...Object.keys(envA), ...Object.keys(envB)])].filter((k) => envA[k] !== envB[k]).sort();
  const movedPrefixes = new Set<string>();
  for (const dep of to.bindings ?? []) {
    const keys = bindingAddressKeys(dep);
    if (envA[keys.host] !== envB[keys.host] || envA[keys.addresses] !== envB[keys.addresses]) {
      movedPrefixes.add(bindingPrefix(dep));
      reasons.push(`address of ${dep} changed`);
    }
  }
  const otherEnv = changedEnv.filter((k) => ![...movedPrefixes].some((d) => k.startsWith(`${d}_`)));
  if (otherEnv.length) reasons.push(`environment changed: ${otherEnv.join(', ')}`);
  const { env: _a, ...restA } = from.spec as unknown as Record<string, unknown>;
  const { env: _b, ...restB } = to.spec as unknown as Record<string, unknown>;
  if (JSON.stringify(restA) !== JSON.stringify(restB)) reasons.push('configuration changed');
  if (from.stateful !== to.stateful) reasons.push('stateful flag changed');
  return reasons.length ? reasons : ['changed'];
}
