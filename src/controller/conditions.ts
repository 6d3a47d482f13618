import { conditionOrder, type Condition, type ConditionType, type DeploymentStatus } from './status.ts';

/**
 * The only writers of a deployment's conditions (`Ready`, `Reconciling`, `Stalled`; reasons in
 * docs/controller.md, "Status"): one function per thing that happened to the deployment.
 */

/** Sets a condition, keeping its transition time when its status did not change. */
function set(s: DeploymentStatus, type: ConditionType, status: Condition['status'], reason: string, message: string): void {
  const now = new Date().toISOString();
  const existing = s.conditions.find((c) => c.type === type);
  if (existing) {
    if (existing.status !== status) existing.lastTransitionTime = now;
    Object.assign(existing, { status, reason, message });
  } else {
    s.conditions.push({ type, status, reason, message, lastTransitionTime: now });
    s.conditions.sort((a, b) => conditionOrder(a.type) - conditionOrder(b.type));
  }
}

export function markStarting(s: DeploymentStatus): void {
  set(s, 'Ready', 'Unknown', 'Starting', 'not reconciled yet');
}

export function markSuspended(s: DeploymentStatus, message: string): void {
  set(s, 'Reconciling', 'False', 'Suspended', message);
}

export function markProgressing(s: DeploymentStatus, message: string): void {
  set(s, 'Reconciling', 'True', 'Progressing', message);
}

/** The machines run the branch's commit. */
export function markSucceeded(s: DeploymentStatus, message: string): void {
  set(s, 'Ready', 'True', 'Succeeded', message);
  set(s, 'Reconciling', 'False', 'Succeeded', message);
  set(s, 'Stalled', 'False', 'Succeeded', message);
}

/** A reconcile failed; `keeps` says what runs meanwhile; a terminal failure stalls until a newer commit. */
export function markFailed(s: DeploymentStatus, f: { reason: string; message: string; keeps: string; terminal: boolean }): void {
  set(s, 'Reconciling', 'False', f.reason, f.message);
  set(s, 'Ready', 'False', f.reason, `${f.message} (${f.keeps})`);
  if (f.terminal) set(s, 'Stalled', 'True', f.reason, `${f.message}; waiting for a newer commit`);
}

/** What a drift probe found, when it is not "nothing" (src/controller/drift.ts). */
export function markDrift(s: DeploymentStatus, action: 'reported' | 'heal-failed', generation: number, items: number): void {
  if (action === 'heal-failed') set(s, 'Ready', 'False', 'DriftNotHealed', `drift could not be restored; generation ${generation} is damaged on some machine`);
  else set(s, 'Ready', 'False', 'Drifted', `${items} item(s) drifted; selfHeal is off`);
}

/** Rolled back through the API, and suspended so the branch is not re-applied. */
export function markRolledBack(s: DeploymentStatus, message: string): void {
  set(s, 'Ready', 'True', 'RolledBack', message);
  set(s, 'Reconciling', 'False', 'Suspended', message);
}

/** Its recorded state cannot be read: not reconciled until it can. */
export function markStateUnreadable(s: DeploymentStatus, reason: 'StateCorrupt' | 'StateUnreadable', message: string): void {
  set(s, 'Ready', 'False', reason, message);
  set(s, 'Reconciling', 'False', reason, message);
}

/** An interrupted transition could not be recovered yet. */
export function markRecoveryFailed(s: DeploymentStatus, reason: string, message: string): void {
  set(s, 'Ready', 'False', reason, message);
}

export function markAbandoned(s: DeploymentStatus, message: string): void {
  set(s, 'Ready', 'Unknown', 'MachineAbandoned', `${message}; reconciling`);
}
