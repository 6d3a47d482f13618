import { StateError } from '../errors.ts';
import { hashOf } from '../manifest/hash.ts';
import type { ArtifactRef, MachineManifest, Manifest } from '../manifest/types.ts';
import type { MachineRecord } from '../targets/runtimeApi.ts';
import { stateStore, type Context } from './context.ts';
import { own, table } from '../lib/table.ts';
import { askMachines, type RecordAnswer } from './machineRecords.ts';

export interface AdoptOptions {
  /** Adopt this generation instead of the newest the machines record. */
  generation?: number;
  /** When machines record the generation with different manifests: the one to take (a prefix will do). */
  manifestHash?: string;
  /** Replace a state directory that records the deployment already (or whose record is damaged). */
  force?: boolean;
  /** Record what the machines found hold even when it does not add up to the recorded manifest. */
  partial?: boolean;
}

export interface AdoptedMachine {
  machine: string;
  /** The generation its record is of; null when it records nothing of this deployment. */
  generation: number | null;
  /** Whether its part went into the adopted generation, and if not, why. */
  used: boolean;
  why?: string;
}

export interface AdoptResult {
  deployment: string;
  generation: number;
  manifestHash: string;
  /** The adopted manifest's hash differs from the recorded one (`partial`). */
  partial: boolean;
  /** The generation the state directory recorded before, when --force replaced one. */
  replaced?: number | 'damaged';
  /** Damaged state files --force moved aside (each kept as FILE.damaged-TIME). */
  setAside?: string[];
  machines: AdoptedMachine[];
  services: number;
}

/**
 * Rebuilds a deployment's recorded state from what its machines record (Disnix: either side can
 * be rebuilt from the other). Each machine named by the models holds its part of the
 * generations it took part in; the newest generation (or `generation`) is put back together
 * from the machines' parts: a machine's record of that generation, else its newest record
 * before it (a machine untouched by a transition keeps the older record of what it runs).
 * The parts must add up to the manifest hash the machines recorded for that generation, which
 * also proves no machine of it is missing. Refuses, changing nothing, when machines disagree,
 * when one cannot be asked, or when the state directory records the deployment already
 * (unless `force`). `desired` (the models now) gives the artifacts' sources and snapshotsKept.
 */
export async function adoptDeployment(desired: Manifest, ctx: Context, opts: AdoptOptions = {}): Promise<AdoptResult> {
  const deployment = desired.deployment;
  const store = stateStore(ctx);
  // --force: a damaged transition lock is moved aside so the lock can be taken; the other
  // damaged files once the machines' records are known to add up.
  const setAside = opts.force ? store.setAsideDamaged(deployment, 'transition.lock') : [];
  const release = store.lockDeployment(deployment);
  try {
    if (store.hasJournal(deployment) && !(opts.force && journalDamaged(store, deployment))) {
      throw new StateError('TRANSITION_PENDING', `deployment ${deployment} has an unfinished transition in ${store.dir}; recover it first (strata apply does), then adopt`, { deployment });
    }
    let replaced: AdoptResult['replaced'];
    try {
      replaced = store.current(deployment)?.generation;
    } catch (e) {
      if (!opts.force) throw e;
      replaced = 'damaged';
    }
    if (replaced !== undefined && !opts.force) {
      throw new StateError('STATE_EXISTS', `${store.dir} records generation ${replaced} of ${deployment} already; adopt replaces recorded state only with --force`, { deployment, generation: replaced });
    }

    const machines = Object.values(desired.machines);
    const answers = await askMachines(deployment, machines, ctx);
    const failed = answers.filter((a) => a.error);
    if (failed.length) {
      throw new StateError('ADOPT_UNREACHABLE', `cannot rebuild the state of ${deployment}: ${failed.map((a) => `${a.machine}: ${a.error}`).join('; ')}`, { deployment, machines: failed.map((a) => a.machine) });
    }
    const mine = answers.filter((a) => a.record?.deployment === deployment);
    if (mine.length === 0) {
      throw new StateError('ADOPT_NOTHING_RECORDED', `no machine of ${deployment} (${machines.map((m) => m.name).join(', ')}) records a generation of it: there is nothing to adopt`, { deployment });
    }
    const n = opts.generation ?? Math.max(...mine.map((a) => a.record!.generation));
    const parts = await recordsOf(deployment, n, mine, machines, ctx);
    const hash = chooseHash(deployment, n, parts, opts.manifestHash);

    const found = table<MachineManifest>();
    const report: AdoptedMachine[] = [];
    for (const a of answers) {
      const r = parts.get(a.machine);
      if (!r) {
        report.push({ machine: a.machine, generation: null, used: false, why: a.record ? `records deployment ${a.record.deployment}` : 'records nothing' });
      } else if (r.generation === n && r.manifestHash !== hash) {
        report.push({ machine: a.machine, generation: r.generation, used: false, why: `records generation ${n} with manifest ${r.manifestHash.slice(0, 12)}` });
      } else if (!r.machine) {
        report.push({ machine: a.machine, generation: r.generation, used: false, why: `retired from the deployment in generation ${r.generation}` });
      } else if (r.machine.name !== a.machine || r.machine.items.some((i) => i.machine !== a.machine)) {
        throw new StateError('ADOPT_AMBIGUOUS', `${a.machine} records the part of machine ${r.machine.name} in generation ${r.generation} of ${deployment}; refusing to guess which machine is which`, { deployment, machine: a.machine });
      } else {
        found[a.machine] = r.machine;
        report.push({ machine: a.machine, generation: r.generation, used: true });
      }
    }
    const machinesSorted = table(Object.keys(found).sort().map((k) => [k, found[k]!] as const));
    const rebuilt = hashOf({ machines: machinesSorted });
    if (rebuilt !== hash && !opts.partial) {
      throw new StateError(
        'ADOPT_INCOMPLETE',
        `the machines' parts of generation ${n} of ${deployment} (${Object.keys(found).join(', ') || 'none'}) make up manifest ${rebuilt.slice(0, 12)}, but generation ${n} was recorded with manifest ${hash.slice(0, 12)}: a machine of that generation is not in the models (removed or renamed), or a machine holds a record of another history. Add the machine back to the models, name another --generation, or adopt what was found with --partial`,
        { deployment, generation: n, rebuilt, recorded: hash },
      );
    }
    const artifacts = table<ArtifactRef>();
    for (const m of Object.values(machinesSorted)) for (const i of m.items) if (i.artifact && own(desired.artifacts, i.artifact)) artifacts[i.artifact] = own(desired.artifacts, i.artifact)!;
    const manifest: Manifest = {
      version: 1,
      deployment,
      machines: machinesSorted,
      artifacts: table(Object.keys(artifacts).sort().map((k) => [k, artifacts[k]!] as const)),
      ...(desired.snapshotsKept !== undefined ? { snapshotsKept: desired.snapshotsKept } : {}),
      hash: rebuilt,
    };
    if (opts.force) setAside.push(...store.setAsideDamaged(deployment));
    store.adopt(deployment, { generation: n, createdAt: new Date().toISOString(), manifest, source: `adopted from the machines ${Object.keys(found).join(', ')}`, ...(rebuilt !== hash ? { adoptedFrom: { manifestHash: hash } } : {}) }, Boolean(opts.force));
    return {
      deployment,
      generation: n,
      manifestHash: rebuilt,
      partial: rebuilt !== hash,
      ...(replaced !== undefined ? { replaced } : setAside.length ? { replaced: 'damaged' as const } : {}),
      ...(setAside.length ? { setAside } : {}),
      machines: report,
      services: Object.values(machinesSorted).reduce((s, m) => s + m.items.filter((i) => i.layer === 'service').length, 0),
    };
  } finally {
    release();
  }
}

function journalDamaged(store: ReturnType<typeof stateStore>, deployment: string): boolean {
  try {
    store.readJournal(deployment);
    return false;
  } catch (e) {
    if (e instanceof StateError && e.code === 'STATE_CORRUPT') return true;
    throw e;
  }
}

/**
 * Each machine's part for generation n: its current record when that is n or older; for one
 * that moved on past n, its record of n (machines keep their last ten), else it cannot say.
 */
async function recordsOf(deployment: string, n: number, mine: RecordAnswer[], machines: readonly MachineManifest[], ctx: Context): Promise<Map<string, MachineRecord>> {
  const out = new Map<string, MachineRecord>();
  const later: MachineManifest[] = [];
  for (const a of mine) {
    if (a.record!.generation <= n) out.set(a.machine, a.record!);
    else later.push(machines.find((m) => m.name === a.machine)!);
  }
  for (const a of await askMachines(deployment, later, ctx, n)) {
    if (a.error || !a.record || a.record.deployment !== deployment || a.record.generation !== n) {
      throw new StateError('ADOPT_AMBIGUOUS', `${a.machine} has moved on past generation ${n} and no longer records it${a.error ? ` (${a.error})` : ''}; adopt a newer --generation`, { machine: a.machine, generation: n });
    }
    out.set(a.machine, a.record);
  }
  return out;
}

/** The manifest hash generation n was recorded with; ADOPT_AMBIGUOUS when machines disagree and `wanted` does not say. */
function chooseHash(deployment: string, n: number, parts: Map<string, MachineRecord>, wanted?: string): string {
  const at = [...parts].filter(([, r]) => r.generation === n);
  if (at.length === 0) throw new StateError('ADOPT_NOTHING_RECORDED', `no machine records generation ${n} of ${deployment}`, { deployment, generation: n });
  const hashes = [...new Set(at.map(([, r]) => r.manifestHash))];
  if (wanted !== undefined) {
    const match = hashes.filter((h) => h.startsWith(wanted));
    if (match.length !== 1) throw new StateError('ADOPT_AMBIGUOUS', `--manifest-hash ${wanted} matches ${match.length} of the manifests machines record for generation ${n} (${hashes.map((h) => h.slice(0, 12)).join(', ')})`, { deployment, generation: n });
    return match[0]!;
  }
  if (hashes.length > 1) {
    const who = hashes.map((h) => `${h.slice(0, 12)} on ${at.filter(([, r]) => r.manifestHash === h).map(([m]) => m).join(', ')}`).join('; ');
    throw new StateError('ADOPT_AMBIGUOUS', `the machines disagree on generation ${n} of ${deployment}: ${who}. Name the one to take with --manifest-hash`, { deployment, generation: n, hashes });
  }
  return hashes[0]!;
}
