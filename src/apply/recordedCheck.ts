import { StateError } from '../errors.ts';
import type { StateStore } from '../state/stateStore.ts';
import type { MachineRecord } from '../targets/runtimeApi.ts';

/** What one machine says it records (undefined: nothing, or a record it could not give). */
export interface MachineAnswer {
  machine: string;
  record?: MachineRecord;
}

/**
 * Refuses a transition when the machines know more of this deployment than the state
 * directory does: a generation above every number it ever recorded (its state was lost, moved,
 * or is an old copy), or a generation it has with another manifest (another state directory
 * deployed it too). Records of other deployments are not this deployment's, whatever their
 * number. STATE_UNKNOWN_GENERATION, before anything on a machine was changed.
 */
export function checkMachinesKnown(deployment: string, answers: readonly MachineAnswer[], state: StateStore): void {
  const highest = state.highestGeneration(deployment);
  const known = new Set(state.generations(deployment));
  const unknown: { machine: string; generation: number; manifestHash: string; why: string }[] = [];
  for (const { machine, record } of answers) {
    if (!record || record.deployment !== deployment || !Number.isSafeInteger(record.generation)) continue;
    if (record.generation > highest) {
      unknown.push({ machine, generation: record.generation, manifestHash: record.manifestHash, why: highest ? `above generation ${highest}, the highest recorded here` : 'nothing is recorded here' });
    } else if (known.has(record.generation)) {
      const rec = state.generation(deployment, record.generation);
      const mine = rec.manifest.hash;
      if (mine !== record.manifestHash && rec.adoptedFrom?.manifestHash !== record.manifestHash) unknown.push({ machine, generation: record.generation, manifestHash: record.manifestHash, why: `recorded here with manifest ${mine.slice(0, 12)}, on the machine with ${record.manifestHash.slice(0, 12)}` });
    }
  }
  if (unknown.length === 0) return;
  const list = unknown.map((u) => `${u.machine} records generation ${u.generation} (manifest ${u.manifestHash.slice(0, 12)}): ${u.why}`).join('; ');
  throw new StateError(
    'STATE_UNKNOWN_GENERATION',
    `the machines run a generation of ${deployment} that the state directory ${state.dir} does not know: ${list}. Planning from this state would start again what runs, or fight another state directory; nothing was changed.`,
    { deployment, stateDir: state.dir, machines: unknown },
  );
}
