import { StrataError, TargetError, type SourcePos } from '../errors.ts';
import { claimId, conflicts, describeClaim, machineClaims, newClaims, type ClaimConflict, type HeldClaim } from '../manifest/claims.ts';
import type { MachineManifest, Manifest } from '../manifest/types.ts';
import type { Plan } from '../plan/types.ts';
import type { MachineRuntime, OtherDeployment } from '../targets/runtimeApi.ts';
import { mapLimit } from '../lib/mapLimit.ts';

/** A port or path the plan would claim on a machine is held by another deployment there. Nothing was touched. */
export class ClaimConflictError extends StrataError {}

/**
 * Asks each machine on which the plan makes a claim its recorded generation did not (a port,
 * a placed path) what the other deployments there hold (one read-only command), and refuses
 * the plan, before anything is written, when one of them holds it. A plan that claims nothing
 * new asks no machine.
 */
export async function refuseClaimConflicts(plan: Plan, recorded: Manifest | undefined, runtimeOf: (machine: string) => MachineRuntime, concurrency = 32): Promise<void> {
  const found = await findClaimConflicts(plan, recorded, runtimeOf, concurrency);
  if (found.length) throw claimConflictError(plan, found);
}

/**
 * The same check once the machine locks are taken, announcing first what the transition claims
 * (the `claim` verb): two deployments whose transitions claim the same port or path at once
 * are not serialised by their separate locks, but the later to announce sees the earlier's
 * claim and is refused. One command per machine on which the plan claims something new.
 */
export async function announceClaims(plan: Plan, recorded: Manifest | undefined, runtimeOf: (machine: string) => MachineRuntime, concurrency = 32): Promise<void> {
  const found = await findClaimConflicts(plan, recorded, runtimeOf, concurrency, (rt, machine) =>
    rt.claim({ deployment: plan.deployment, generation: plan.generation, manifestHash: plan.desired.hash, machine: plan.desired.machines[machine]! }),
  );
  if (found.length) throw claimConflictError(plan, found);
}

export async function findClaimConflicts(
  plan: Plan,
  recorded: Manifest | undefined,
  runtimeOf: (machine: string) => MachineRuntime,
  concurrency = 32,
  ask: (rt: MachineRuntime, machine: string) => Promise<OtherDeployment[]> = (rt) => rt.others(),
): Promise<ClaimConflict[]> {
  const wanted = newClaims(recorded, plan.desired);
  const found: ClaimConflict[] = [];
  await mapLimit([...wanted], concurrency, async ([machine, claims]) => {
    const held: HeldClaim[] = [];
    for (const other of await ask(runtimeOf(machine), machine)) {
      if (other.deployment === plan.deployment || !other.record.machine) continue;
      if (!wellFormed(other.record.machine)) {
        // What it holds cannot be told: refuse rather than risk a collision (its owner's commands report the damage too).
        throw new TargetError('RUNTIME_FAILED', `${machine}: the record of deployment ${other.deployment} there is damaged, so what it holds cannot be told; repair or remove ${other.deployment}'s generation record on ${machine}`, { machine, deployment: other.deployment });
      }
      for (const claim of machineClaims(other.record.machine)) held.push({ deployment: other.deployment, generation: other.record.generation, claim, ...(other.pending ? { pending: true } : {}) });
    }
    found.push(...conflicts(claims, held));
  });
  return found;
}

function wellFormed(m: unknown): m is MachineManifest {
  const mm = m as MachineManifest;
  return typeof mm === 'object' && mm !== null && typeof mm.address === 'string' && typeof mm.name === 'string' && Array.isArray(mm.items) &&
    mm.items.every((i) => typeof i === 'object' && i !== null && typeof i.key === 'string' && typeof i.name === 'string' && typeof i.module === 'string' && typeof i.spec === 'object' && i.spec !== null);
}

/** One line per conflict: the model line of the new claim (when the plan knows it), both deployments, the claim. */
export function claimConflictError(plan: Plan, found: readonly ClaimConflict[]): ClaimConflictError {
  const sorted = [...found].sort((a, b) => (claimId(a.claim) < claimId(b.claim) ? -1 : 1));
  const lines = sorted.map(({ claim, held }) => {
    const at: (SourcePos & { field?: string }) | undefined = plan.claimSources?.[claimId(claim)];
    const where = at ? `${at.file}:${at.line}:${at.column}: ${at.field ? `${at.field}: ` : ''}` : `${claim.item.name} on ${claim.machine}: `;
    return `${where}deployment "${plan.deployment}" claims ${describeClaim(claim)} on machine ${claim.machine}, but deployment "${held.deployment}" holds ${describeClaim(held.claim)} there (its ${held.claim.item.name}, generation ${held.generation}${held.pending ? ', being deployed now' : ''}); two deployments on one machine cannot share a port or a placed path`;
  });
  return new ClaimConflictError('CLAIM_CONFLICT', lines.join('\n'), {
    deployment: plan.deployment,
    conflicts: sorted.map(({ claim, held }) => ({
      machine: claim.machine,
      item: claim.item.name,
      claim: describeClaim(claim),
      heldBy: held.deployment,
      heldItem: held.claim.item.name,
      heldGeneration: held.generation,
      ...(held.pending ? { heldPending: true } : {}),
      ...(plan.claimSources?.[claimId(claim)] ? { source: plan.claimSources[claimId(claim)] } : {}),
    })),
  });
}
