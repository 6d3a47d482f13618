import type { StateStore } from '../state/stateStore.ts';
import type { DeploymentRecord } from './deploymentRecord.ts';
import type { ControllerMetrics } from './metrics.ts';
import type { DeploymentStatus } from './status.ts';
import { recordApplied } from './transition.ts';

/** What the controller keeps of a deployment across restarts (`controller.json` in its state directory). */
interface Notes {
  suspended?: boolean;
  lastFailure?: DeploymentStatus['lastFailure'];
  lastFailedRevision?: string;
  lastAppliedRevision?: string;
}

/** Takes up what the state directory recorded of a deployment: its notes and current generation. Throws on damaged state. */
export function restoreNotes(d: DeploymentRecord, store: StateStore, metrics: ControllerMetrics): void {
  const name = d.config.name;
  const notes = store.readControllerNotes<Notes>(name) ?? {};
  if (notes.suspended !== undefined) d.status.suspended = notes.suspended;
  d.status.lastFailure = notes.lastFailure;
  d.status.lastFailedRevision = notes.lastFailedRevision;
  const current = store.current(name);
  if (current) {
    const revision = store.generation(name, current.generation).commit?.sha ?? notes.lastAppliedRevision;
    if (revision) recordApplied(d, metrics, revision, current.generation);
    else d.status.generation = current.generation;
    metrics.machines.set({ deployment: name }, Object.keys(current.manifest.machines).length);
  }
}

export function persistNotes(d: DeploymentRecord, store: StateStore): void {
  // (A damaged controller.json is replaced by the notes held in memory.)
  const notes: Notes = {
    suspended: d.status.suspended,
    lastFailure: d.status.lastFailure,
    lastFailedRevision: d.status.lastFailedRevision,
    lastAppliedRevision: d.status.lastAppliedRevision,
  };
  store.writeControllerNotes(d.config.name, notes);
}
