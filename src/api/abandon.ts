import { nameProblem } from '../model/names.ts';
import { join, resolve } from 'node:path';
import { lostStatefulServices, recordWithoutMachine } from '../apply/abandoned.ts';
import type { RecoveryResult } from '../apply/recoveryResult.ts';
import { foldJournal } from '../apply/transitionJournal.ts';
import { entry } from '../state/journal.ts';
import { recoverLocked } from './apply.ts';
import { StateError, StrataError, UsageError } from '../errors.ts';
import type { PendingRestore } from '../manifest/recorded.ts';
import type { AbandonRecord } from '../state/records.ts';
import type { StateStore } from '../state/stateStore.ts';
import { SnapshotStore } from '../state/snapshots.ts';
import { stateStore, type Context } from './context.ts';

/**
 * Giving up on a machine that is gone for good (docs/reliability.md, "A machine that never
 * comes back"). Nothing here contacts the abandoned machine; the other machines of a pending
 * transition are contacted by its recovery only.
 */

export interface AbandonRequest {
  deployment: string;
  machine: string;
  /** Why, in words: kept in the audit record. */
  reason: string;
  /** Who asked: `user@host` for the CLI, the API caller for the controller. */
  by: string;
}

/** What abandoning the machine would do, read from the state directory alone. */
export interface AbandonPreview {
  deployment: string;
  machine: string;
  /** The recorded generation that has the machine, if one does. */
  generation?: number;
  /** Keys of the items recorded on it: they leave the recorded state. */
  items: string[];
  /** The pending transition that involves the machine, if there is one: its steps there are lost. */
  pendingTransition?: { generation: number; stepsOnMachine: number };
  /** Stateful services it held, with the snapshot they will be restored from when placed elsewhere. */
  stateful: PendingRestore[];
}

export interface AbandonResult extends AbandonPreview {
  /** The generation recorded without the machine (absent when no recorded generation had it). */
  recorded?: number;
  recovery?: RecoveryResult;
  audit: AbandonRecord;
  message: string;
}

function validate(req: AbandonRequest): void {
  // The models' own name rule (src/model/names.ts), as every other name option is checked.
  for (const [kind, name] of [['deployment', req.deployment], ['machine', req.machine]] as const) {
    const problem = nameProblem(name);
    if (problem !== undefined) throw new UsageError(`not a ${kind} name: ${JSON.stringify(name)} (${problem})`);
  }
  for (const [field, v] of [['reason', req.reason], ['by', req.by]] as const) {
    if (typeof v !== 'string' || !v.trim() || v.length > 500 || /[\u0000-\u001f\u007f]/.test(v)) {
      throw new UsageError(`abandoning a machine needs a ${field}: one line of text, at most 500 characters`);
    }
  }
}

/** Says what `abandonMachine` would do; touches no machine and changes nothing. */
export function previewAbandon(req: AbandonRequest, ctx: Context): AbandonPreview {
  validate(req);
  return preview(req, stateStore(ctx), ctx);
}

function preview(req: AbandonRequest, state: StateStore, ctx: Context): AbandonPreview {
  const { deployment, machine } = req;
  const current = state.current(deployment);
  const j = foldJournal(state.readJournal(deployment));
  const pending = j.begin && !j.outcome && j.begin.plan.machines.includes(machine) ? j.begin.plan : undefined;
  const recorded = current?.manifest.machines[machine];
  if (!recorded && !pending) {
    const known = current ? Object.keys(current.manifest.machines).sort().join(', ') || 'none' : 'none (nothing deployed)';
    throw new StateError('MACHINE_NOT_FOUND', `deployment ${deployment} records no machine ${machine} and no pending transition involves it; its machines: ${known}`, { deployment, machine });
  }
  const stateful = recorded ? lostStatefulServices(resolve(ctx.stateDir), deployment, recorded) : [];
  return {
    deployment,
    machine,
    ...(recorded && current ? { generation: current.generation } : {}),
    items: (recorded?.items ?? []).map((i) => i.key),
    ...(pending ? { pendingTransition: { generation: pending.generation, stepsOnMachine: pending.steps.filter((s) => s.machine === machine).length } } : {}),
    stateful,
  };
}

/**
 * Abandons a machine of a deployment: a pending transition's recovery finishes treating the
 * machine's steps as lost (journal entry `abandon`, so any later recovery skips it too, and the
 * one that finishes records what follows), then a new generation is recorded without the
 * machine and its items, with the audit record (who, when, why). Stateful services it held
 * become pending restores: the next plan that places one elsewhere restores the newest snapshot
 * of it. Holds the deployment's transition lock.
 */
export async function abandonMachine(request: AbandonRequest, ctx: Context): Promise<AbandonResult> {
  validate(request);
  const { deployment, machine } = request;
  const state = stateStore(ctx);
  const release = state.lockDeployment(deployment);
  try {
    const before = preview(request, state, ctx);
    const at = new Date().toISOString();
    const newestBefore = state.highestGeneration(deployment);
    let recovery: RecoveryResult | undefined;
    if (state.hasJournal(deployment)) {
      const j = foldJournal(state.readJournal(deployment));
      if (before.pendingTransition && !j.abandoned.has(machine)) state.journal(deployment, entry.abandon(machine, request.by, request.reason));
      try {
        recovery = await recoverLocked(deployment, ctx);
      } catch (e) {
        // The journal keeps `abandon`: every recovery skips the machine from now on, and the one
        // that finishes takes it out of the recorded state (src/apply/abandoned.ts).
        if (!(e instanceof StrataError)) throw e;
        const again = `${machine} is abandoned for the pending transition: its recovery no longer contacts it, and takes it out of the recorded state once the other machines answer (strata apply, or the controller's next try)`;
        throw new StrataError(e.code, `${e.message}\n${again}`, { ...e.data, abandoned: machine });
      }
    }
    // Recovery took the machine out of the recorded state if the abandonment was journaled with
    // its transition; otherwise (or if it had no generation with the machine then) it is done here.
    const abandonment = { machine, by: request.by, reason: request.reason, at };
    const done = recordWithoutMachine(state, deployment, abandonment);
    const byRecovery = done
      ? undefined
      : state
          .generations(deployment)
          .filter((n) => n > newestBefore)
          .map((n) => state.generation(deployment, n))
          .find((g) => g.abandoned?.machine === machine);
    const recorded = done?.generation ?? byRecovery?.generation;
    const audit: AbandonRecord = done?.audit ?? byRecovery?.abandoned ?? { ...abandonment, items: [], from: state.currentGeneration(deployment) ?? 0 };
    const stateful = done?.stateful ?? (byRecovery?.pendingRestores ?? []).filter((p) => p.machine === machine);
    const after: AbandonPreview = { ...before, items: audit.items, stateful };
    const parts = [`abandoned ${machine} of ${deployment} (by ${request.by}: ${request.reason})`];
    if (recovery && recovery.action !== 'none') parts.push(`recovery (${recovery.action}): ${recovery.message}`);
    if (recorded !== undefined) parts.push(`${audit.items.length} item${audit.items.length === 1 ? '' : 's'} left the recorded state: generation ${recorded} has no ${machine}`);
    const snapshots = new SnapshotStore(resolve(ctx.stateDir));
    for (const s of after.stateful) {
      parts.push(s.snapshot ? `${s.service} is restored from ${join(snapshots.serviceDir(deployment, s.service), s.snapshot.file)} (taken ${s.snapshot.createdAt}) once the models place it on another machine` : `${s.service} had no snapshot: placed elsewhere, it starts with empty data`);
    }
    return { ...after, ...(recorded !== undefined ? { recorded } : {}), ...(recovery ? { recovery } : {}), audit, message: parts.join('; ') };
  } finally {
    release();
  }
}
