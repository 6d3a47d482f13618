import type { GenerationRecord } from '../state/records.ts';
import { stateStore, type Context } from './context.ts';

export interface HistoryEntry {
  generation: number;
  createdAt: string;
  current: boolean;
  commit?: GenerationRecord['commit'];
  source?: string;
  rolledBackTo?: number;
  /** For a generation made by `strata abandon-machine`: who abandoned which machine, when and why. */
  abandoned?: GenerationRecord['abandoned'];
  /** Machines and service instances in the generation. */
  machines: number;
  services: number;
}

/** Every recorded generation of a deployment, newest first, with the commit it came from. */
export function deploymentHistory(deployment: string, ctx: Context): HistoryEntry[] {
  const store = stateStore(ctx);
  const current = store.currentGeneration(deployment);
  return store
    .generations(deployment)
    .reverse()
    .map((n) => {
      const g = store.generation(deployment, n);
      const machines = Object.values(g.manifest.machines);
      return {
        generation: n,
        createdAt: g.createdAt,
        current: n === current,
        ...(g.commit ? { commit: g.commit } : {}),
        ...(g.source ? { source: g.source } : {}),
        ...(g.rolledBackTo !== undefined ? { rolledBackTo: g.rolledBackTo } : {}),
        ...(g.abandoned ? { abandoned: g.abandoned } : {}),
        machines: machines.length,
        services: machines.reduce((s, m) => s + m.items.filter((i) => i.layer === 'service').length, 0),
      };
    });
}
