import type { Step } from '../plan/types.ts';

export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  /** A CamelCase word a script can match: Succeeded, ApplyFailed, ModelInvalid, … */
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface StepProgress {
  id: string;
  phase: Step['phase'];
  action: Step['action'];
  machine: string;
  item: string;
  state: 'pending' | 'running' | 'done' | 'failed';
  /** Ids of unfinished steps this one waits for; empty once it may run. */
  waitingOn: string[];
}

/** What the API says about a deployment; the controller's whole view of it. */
export interface DeploymentStatus {
  name: string;
  repository: string;
  suspended: boolean;
  conditions: Condition[];
  /** The commit whose models the machines run now. */
  lastAppliedRevision?: string;
  /** The commit the latest reconcile looked at. */
  lastAttemptedRevision?: string;
  /** The latest commit that could not be deployed, and why. */
  lastFailedRevision?: string;
  lastFailure?: { revision: string; reason: string; message: string; terminal: boolean; at: string };
  generation?: number;
  /** The last time the followed branch moved to a commit not descending from the one before (a force push). */
  lastHistoryRewrite?: { from?: string; to: string; at: string };
  /** The latest drift probe: what differed from the recorded generation, and what was done. */
  drift?: { checkedAt: string; items: { machine: string; name: string; reason: string }[]; unreachable: string[]; action: 'none' | 'healed' | 'reported' | 'heal-failed' };
  /** The transition in flight, step by step. */
  plan?: { generation: number; revision: string; steps: StepProgress[] };
  /** When the latest reconcile ended. */
  lastReconcileAt?: string;
  nextReconcileAt?: string;
  consecutiveFailures: number;
}

export function newStatus(name: string, repository: string, suspended: boolean): DeploymentStatus {
  return { name, repository, suspended, conditions: [], consecutiveFailures: 0 };
}

const ORDER: ConditionType[] = ['Ready', 'Reconciling', 'Stalled'];

/** The order conditions are listed in. */
export const conditionOrder = (type: ConditionType): number => ORDER.indexOf(type);

export function conditionOf(s: DeploymentStatus, type: ConditionType): Condition | undefined {
  return s.conditions.find((c) => c.type === type);
}

/** Progress of a plan's steps, from apply's events. */
export function stepsOf(steps: Step[]): StepProgress[] {
  return steps.map((s) => ({ id: s.id, phase: s.phase, action: s.action, machine: s.machine, item: s.item.name, state: 'pending', waitingOn: [...s.after] }));
}

export function markStep(progress: StepProgress[], id: string, state: StepProgress['state']): void {
  const step = progress.find((p) => p.id === id);
  if (!step) return;
  step.state = state;
  if (state === 'done') for (const p of progress) p.waitingOn = p.waitingOn.filter((w) => w !== id);
}
