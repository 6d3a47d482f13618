import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { startRenewal, takeLock, type LockSpec } from '../apply/machineLocks.ts';
import { restoreSnapshot, takeSnapshot } from '../apply/stateful.ts';
import { StateError, type StrataError, UsageError } from '../errors.ts';
import type { Item, MachineManifest } from '../manifest/types.ts';
import { DEFAULT_SNAPSHOTS_KEPT, SnapshotStore, type SnapshotMeta } from '../state/snapshots.ts';
import { shownPath } from '../lib/regularFile.ts';
import { pathName } from '../state/stateNames.ts';
import { connectOptions, stateStore, type Context } from './context.ts';

export interface ServiceRef {
  deployment: string;
  service: string;
  /** Only the instance on this machine (needed for restore when the service runs on several). */
  machine?: string;
}

interface Instance {
  generation: number;
  machine: MachineManifest;
  item: Item;
}

/** The recorded generation's instances of a stateful service. */
function instancesOf(ref: ServiceRef, ctx: Context): { instances: Instance[]; kept: number } {
  checkRef(ref);
  const recorded = stateStore(ctx).current(ref.deployment);
  if (!recorded) throw new StateError('NOTHING_DEPLOYED', `deployment ${ref.deployment} has nothing deployed`, { deployment: ref.deployment });
  const all = Object.values(recorded.manifest.machines).flatMap((m) =>
    m.items.filter((i) => i.layer === 'service' && i.name === ref.service).map((item) => ({ generation: recorded.generation, machine: m, item })),
  );
  if (all.length === 0) throw new StateError('SERVICE_NOT_DEPLOYED', `service ${ref.service} is not deployed in generation ${recorded.generation} of ${ref.deployment}`, { ...ref });
  const instances = ref.machine === undefined ? all : all.filter((i) => i.machine.name === ref.machine);
  if (instances.length === 0) {
    throw new StateError('SERVICE_NOT_DEPLOYED', `service ${ref.service} does not run on ${ref.machine}; it runs on ${all.map((i) => i.machine.name).join(', ')}`, { ...ref });
  }
  for (const { item } of instances) {
    if (!item.stateful) throw new StateError('NOT_STATEFUL', `service ${ref.service} is not stateful: it has no data strata keeps (set stateful: true in the services model)`, { ...ref });
  }
  return { instances, kept: recorded.manifest.snapshotsKept ?? DEFAULT_SNAPSHOTS_KEPT };
}

/** Every name of a ref is a model-valid name before it is looked up or becomes a path (the CLI and the controller alike). */
function checkRef(ref: ServiceRef): void {
  pathName('deployment', ref.deployment);
  pathName('service', ref.service);
  if (ref.machine !== undefined) pathName('machine', ref.machine);
}

export interface SnapshotTaken {
  machine: string;
  file: string;
  meta: SnapshotMeta;
}

/** Takes a snapshot of every instance (or the one on `machine`) of a running stateful service now. */
export async function snapshotService(ref: ServiceRef, ctx: Context): Promise<SnapshotTaken[]> {
  const { instances, kept } = instancesOf(ref, ctx);
  const store = new SnapshotStore(resolve(ctx.stateDir));
  const out: SnapshotTaken[] = [];
  for (const { generation, machine, item } of instances) {
    const rt = ctx.services.openRuntime(machine, ref.deployment, connectOptions(ctx));
    try {
      const stored = await takeSnapshot(rt, item, store, { deployment: ref.deployment, generation, kept });
      out.push({ machine: machine.name, file: stored.file, meta: stored.meta });
    } finally {
      await rt.close();
    }
  }
  return out;
}

/** A restore chosen but not done: which snapshot goes into which instance (not a Plan: apply never sees it). */
export interface RestoreChoice {
  deployment: string;
  service: string;
  machine: string;
  /** The snapshot file restored, and its sidecar (which it matched when planned). */
  file: string;
  meta: SnapshotMeta;
  instance: Instance;
}

/**
 * Which instance a restore overwrites and with which snapshot (`from`, else the service's
 * newest), without touching a machine: for the confirmation `strata restore` asks for.
 */
export function chooseRestore(ref: ServiceRef & { from?: string }, ctx: Context): RestoreChoice {
  const { instances } = instancesOf(ref, ctx);
  if (instances.length > 1) {
    throw new UsageError(`service ${ref.service} runs on ${instances.map((i) => i.machine.name).join(', ')}; name the one to restore with --machine`);
  }
  const instance = instances[0]!;
  const store = new SnapshotStore(resolve(ctx.stateDir));
  let file: string;
  if (ref.from !== undefined) file = resolve(ref.from);
  else {
    const latest = store.latest(ref.deployment, ref.service);
    if (!latest) throw new StateError('SNAPSHOT_NOT_FOUND', `no snapshot of ${ref.service} in ${store.serviceDir(ref.deployment, ref.service)} (take one with strata snapshot, or name one with --from FILE)`, { ...ref });
    file = latest.file;
  }
  // Read in full now (type, size bound, sidecar, sha256), so a bad file is refused before anyone confirms.
  const { meta } = store.read(file);
  if (meta.module !== instance.item.module) {
    throw new StateError('SNAPSHOT_MISMATCH', `${shownPath(file)} is a snapshot of a ${meta.module} item; ${ref.service} on ${instance.machine.name} is a ${instance.item.module}`, { file });
  }
  if (meta.service !== ref.service) {
    throw new StateError('SNAPSHOT_MISMATCH', `${shownPath(file)} is a snapshot of the service ${meta.service} (its sidecar says so), not of ${ref.service}; refusing to restore it`, { file });
  }
  return { deployment: ref.deployment, service: ref.service, machine: instance.machine.name, file, meta, instance };
}

const RESTORE_LEASE_MS = 60_000;

/**
 * Restores the planned snapshot into the running instance, holding its machine's lock meanwhile
 * as a transition does (src/apply/machineLocks.ts: the state directory's identity as owner, a
 * lease renewed while a long restore runs), so no transition touches the machine during it and a
 * restore that died leaves a lock recovery recognises as its own orphan. A lock taken over
 * meanwhile fails the restore with LOCK_LOST once the machine has answered.
 */
export async function restoreService(plan: RestoreChoice, ctx: Context): Promise<{ bytes: number }> {
  const machine = plan.instance.machine.name;
  const rt = ctx.services.openRuntime(plan.instance.machine, plan.deployment, connectOptions(ctx));
  const live = ctx.services.live;
  const lock: LockSpec = { owner: stateStore(ctx).identity(), token: randomBytes(6).toString('hex'), leaseMs: ctx.lockLeaseMs ?? RESTORE_LEASE_MS, live };
  let lost: StrataError | undefined;
  try {
    return await live.during(lock.token, async () => {
      await takeLock(rt, lock, (b) => ctx.onEvent?.({ kind: 'lock-broken', machine, holder: b, why: b.why }));
      const stopRenewal = startRenewal(() => [rt], lock, (_, e) => {
        lost = e;
        ctx.onEvent?.({ kind: 'lock-lost', machine, error: e.message });
      });
      try {
        const restored = await restoreSnapshot(rt, plan.instance.item, new SnapshotStore(resolve(ctx.stateDir)), plan.file);
        if (lost) throw lost;
        return restored;
      } finally {
        stopRenewal();
        await rt.unlock(lock.owner, lock.token).catch(() => undefined);
      }
    });
  } finally {
    await rt.close();
  }
}
