import { basename } from 'node:path';
import { hashOf } from '../manifest/hash.ts';
import type { Manifest, MachineManifest } from '../manifest/types.ts';
import type { PendingRestore } from '../manifest/recorded.ts';
import type { AbandonRecord } from '../state/records.ts';
import type { StateStore } from '../state/stateStore.ts';
import { SnapshotStore } from '../state/snapshots.ts';

/**
 * Taking an abandoned machine out of the recorded state (`strata abandon-machine`): used by the
 * API (src/api/abandon.ts) and by recovery, which finishes an abandonment journaled with a
 * pending transition even when the process that asked for it died in the middle.
 */

/** Who gave up on a machine, and why: the journal's `abandon` entry. */
export interface AbandonRequestRecord {
  machine: string;
  by: string;
  reason: string;
  at: string;
}

/** The stateful services a machine held, each with the newest snapshot of it in the state directory. */
export function lostStatefulServices(stateDir: string, deployment: string, machine: MachineManifest): PendingRestore[] {
  const snapshots = new SnapshotStore(stateDir);
  return machine.items
    .filter((i) => i.layer === 'service' && i.stateful)
    .map((i): PendingRestore => {
      const latest = snapshots.latest(deployment, i.name);
      return {
        service: i.name,
        module: i.module,
        machine: machine.name,
        ...(latest?.meta ? { snapshot: { file: basename(latest.file), sha256: latest.meta.sha256, createdAt: latest.meta.createdAt } } : {}),
      };
    });
}

/**
 * Records a new generation without the machine and its items, with the audit record and the
 * stateful services it held as pending restores. Returns it, or undefined when the current
 * generation does not have the machine (nothing to take out).
 */
export function recordWithoutMachine(state: StateStore, deployment: string, req: AbandonRequestRecord): { generation: number; audit: AbandonRecord; stateful: PendingRestore[] } | undefined {
  const current = state.current(deployment);
  const lost = current?.manifest.machines[req.machine];
  if (!current || !lost) return undefined;
  const machines = Object.fromEntries(Object.entries(current.manifest.machines).filter(([name]) => name !== req.machine));
  const used = new Set(Object.values(machines).flatMap((m) => m.items.flatMap((i) => (i.artifact ? [i.artifact] : []))));
  const manifest: Manifest = {
    ...current.manifest,
    machines,
    artifacts: Object.fromEntries(Object.entries(current.manifest.artifacts).filter(([h]) => used.has(h))),
    hash: hashOf({ machines }),
  };
  const stateful = lostStatefulServices(state.dir, deployment, lost);
  const carried = (current.pendingRestores ?? []).filter((p) => !stateful.some((s) => s.service === p.service));
  const pendingRestores = [...carried, ...stateful];
  const audit: AbandonRecord = { ...req, items: lost.items.map((i) => i.key), from: current.generation };
  // Above every number this state directory ever used (the high-water mark): never one reused.
  const generation = state.nextGeneration(deployment);
  state.record(deployment, {
    generation,
    createdAt: req.at,
    manifest,
    source: `abandon-machine ${req.machine}`,
    abandoned: audit,
    ...(pendingRestores.length ? { pendingRestores } : {}),
  });
  return { generation, audit, stateful };
}
