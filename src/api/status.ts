import type { Item, MachineManifest } from '../manifest/types.ts';
import { mapLimit } from '../lib/mapLimit.ts';
import type { MachineRuntime, MachineStatus } from '../targets/runtimeApi.ts';
import { connectOptions, stateStore, type Context } from './context.ts';

export interface ItemReport {
  name: string;
  key: string;
  layer: Item['layer'];
  module: string;
  /** running / stopped for processes, present for the rest, missing when the machine lacks it. */
  state: 'running' | 'stopped' | 'present' | 'missing';
  pid?: number;
  /** Why the item is not as the recorded generation says (drift); absent when it is. */
  drift?: string;
}

/** One difference between a machine and the recorded generation. */
export interface Drift {
  machine: string;
  /** The item's key (`s.web`, `f.…`) and what a person calls it. */
  key: string;
  name: string;
  reason: string;
}

export interface MachineReport {
  machine: string;
  address: string;
  reachable: boolean;
  error?: string;
  generation: number | null;
  lock: string | null;
  items: ItemReport[];
}

export interface StatusReport {
  deployment: string;
  generation: number | null;
  machines: MachineReport[];
}

/** Asks every machine of the recorded generation what it runs: one round trip each. */
export async function deploymentStatus(deployment: string, ctx: Context): Promise<StatusReport> {
  const recorded = stateStore(ctx).current(deployment);
  if (!recorded) return { deployment, generation: null, machines: [] };
  const conn = connectOptions(ctx);
  const machines = await mapLimit(Object.values(recorded.manifest.machines), 32, async (m) => machineReport(ctx.services.openRuntime(m, deployment, conn), m));
  return { deployment, generation: recorded.generation, machines };
}

async function machineReport(rt: MachineRuntime, m: MachineManifest): Promise<MachineReport> {
  let status: MachineStatus;
  try {
    status = await rt.status();
  } catch (e) {
    return { machine: m.name, address: m.address, reachable: false, error: (e as Error).message, generation: null, lock: null, items: [] };
  } finally {
    await rt.close();
  }
  const byKey = new Map(status.items.map((i) => [i.key, i]));
  const items = m.items.map((item): ItemReport => {
    const s = byKey.get(item.key);
    const drift = s ? s.drift : 'not active on the machine';
    return { name: item.name, key: item.key, layer: item.layer, module: item.module, state: s ? s.state : 'missing', ...(s?.pid ? { pid: s.pid } : {}), ...(drift ? { drift } : {}) };
  });
  return { machine: m.name, address: m.address, reachable: true, generation: status.generation, lock: status.lock, items };
}

/** Every item of the report that drifted from the recorded generation, machine by machine. */
export function driftOf(report: StatusReport): Drift[] {
  return report.machines.flatMap((m) => m.items.flatMap((i) => (i.drift ? [{ machine: m.machine, key: i.key, name: i.name, reason: i.drift }] : [])));
}
