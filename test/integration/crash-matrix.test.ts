import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/apply/apply.ts';
import { LiveTransitions } from '../../src/apply/liveTransitions.ts';
import { recoverTransition } from '../../src/apply/recover.ts';
import type { Item, MachineManifest, Manifest } from '../../src/manifest/types.ts';
import { planTransition } from '../../src/plan/diff.ts';
import type { Plan } from '../../src/plan/types.ts';
import type { Tree } from '../../src/tree/tree.ts';
import { Crash, FakeFleet, Life } from '../support/fakeRuntime.ts';
import { MemoryState, MemoryStateStore } from '../support/memoryState.ts';

// The transition's promise (docs/reliability.md, "The transition and what it promises", 2): a
// crash at any point is recovered. Here apply dies right after each of its durable writes in
// turn (every journal entry, the generation record, the journal's removal), a new process
// recovers from the same state and machines, and each time the deployment must be wholly on
// the old generation or wholly on the new one, with the journal gone and no machine locked.
// test/e2e's crash suite proves the same through kill -9, sshd and the real runtime.

const DEPLOYMENT = 'shop';

function item(machine: string, name: string, opts: { deps?: string[]; version?: number; stateful?: boolean } = {}): Item {
  return {
    key: `s.${name}`,
    machine,
    layer: 'service',
    name,
    module: 'process',
    spec: { start: `./${name} v${opts.version ?? 1}`, env: {} },
    dependsOn: opts.deps ?? [],
    stateful: opts.stateful ?? false,
    hash: `${name}@${machine}#${opts.version ?? 1}`,
  };
}

function manifestOf(hash: string, machines: Record<string, Item[]>): Manifest {
  const ms: Record<string, MachineManifest> = {};
  for (const [name, items] of Object.entries(machines)) ms[name] = { name, address: `10.0.0.${Object.keys(ms).length + 1}`, target: { kind: 'ssh', host: name }, items } as MachineManifest;
  return { version: 1, deployment: DEPLOYMENT, machines: ms, artifacts: {}, hash };
}

// Generation 1: a database on m1, the api beside it, the web front on m2, a legacy service on m3.
const OLD = manifestOf('old', {
  m1: [item('m1', 'db', { stateful: true }), item('m1', 'api', { deps: ['m1/s.db'] })],
  m2: [item('m2', 'web', { deps: ['m1/s.api'] })],
  m3: [item('m3', 'legacy')],
});
// Generation 2: the database moves to m2 (its data carried over), the api is upgraded and
// follows it, legacy is removed and a new worker takes its place on m3.
const NEW = manifestOf('new', {
  m1: [item('m1', 'api', { deps: ['m2/s.db'], version: 2 })],
  m2: [item('m2', 'db', { stateful: true }), item('m2', 'web', { deps: ['m1/s.api'] })],
  m3: [item('m3', 'worker', { deps: ['m1/s.api'] })],
});

// The plan ships no artifact: a tree with no files.
const noTree: Tree = { label: 'no files', rootedAt: 'repository', readFile: async () => undefined, list: async () => undefined, kind: async () => undefined, readLink: async () => undefined };

/** A world with generation 1 deployed by a transition that ran to the end, the database holding data. */
async function deployedWorld() {
  const data = new MemoryState();
  const fleet = new FakeFleet();
  const life = new Life();
  const state = new MemoryStateStore(data, life);
  await applyPlan(planTransition(undefined, OLD), { state, tree: noTree, runtimeFor: fleet.runtimeFor(DEPLOYMENT, life), live: new LiveTransitions() });
  fleet.machine('m1').data.set('s.db', 'rows of generation 1');
  return { data, fleet };
}

/** The items a machine runs, as `key#hash`, and those a manifest gives it. */
const running = (fleet: FakeFleet, m: string) => [...fleet.machine(m).items.values()].map((i) => `${i.key}#${i.hash}`).sort();
const planned = (mf: Manifest, m: string) => (mf.machines[m]?.items ?? []).map((i) => `${i.key}#${i.hash}`).sort();

/** Everything recovery must leave: one generation, wholly; no journal; no lock; the data where the database runs. */
function expectWhole(data: MemoryState, fleet: FakeFleet, label: string): number {
  const g = data.current.get(DEPLOYMENT);
  expect([1, 2], label).toContain(g);
  const mf = g === 2 ? NEW : OLD;
  expect(data.generations.get(DEPLOYMENT)!.get(g!)!.manifest.hash, label).toBe(mf.hash);
  for (const m of ['m1', 'm2', 'm3']) {
    expect(running(fleet, m), `${label}: items on ${m}`).toEqual(planned(mf, m));
    expect(fleet.machine(m).generation, `${label}: generation recorded on ${m}`).toBe(g);
    expect(fleet.machine(m).lock, `${label}: lock on ${m}`).toBeNull();
  }
  const dbOn = g === 2 ? 'm2' : 'm1';
  expect(fleet.machine(dbOn).data.get('s.db'), `${label}: the database's data on ${dbOn}`).toBe('rows of generation 1');
  expect(data.journals.has(DEPLOYMENT), `${label}: journal`).toBe(false);
  expect(data.locked.size, label).toBe(0);
  return g!;
}

/**
 * Applies generation 2 with the process dying after its Nth write, for N = 1, 2, … until a run
 * completes without dying; after each death a new process recovers. Returns each N's outcome.
 */
async function crashAfterEveryWrite(prepare: (fleet: FakeFleet) => void, dieOn?: string): Promise<{ crashes: number; outcomes: Map<number, { recovery: string; generation: number }> }> {
  const outcomes = new Map<number, { recovery: string; generation: number }>();
  for (let n = 1; n < 500; n++) {
    const { data, fleet } = await deployedWorld();
    prepare(fleet);
    // Dying after the Nth write, or (dieOn) after the Nth machine command of that verb.
    const life = new Life(dieOn ? { verb: dieOn, count: n } : undefined);
    const state = new MemoryStateStore(data, life, dieOn ? Infinity : n);
    const plan: Plan = planTransition({ generation: 1, manifest: OLD }, NEW);
    const run = applyPlan(plan, { state, tree: noTree, runtimeFor: fleet.runtimeFor(DEPLOYMENT, life), live: new LiveTransitions(), lockLeaseMs: 60_000 });
    const died = await run.then(
      () => false,
      (e: unknown) => {
        if (e instanceof Crash) return true;
        if (life.dead) return true; // died while it was handling a failure: the same crash
        return false; // a failure the plan was told to have, undone while alive
      },
    );
    if (!life.dead) {
      expectWhole(data, fleet, `no crash (${n} ${dieOn ?? 'write'}s were enough)`);
      return { crashes: n - 1, outcomes };
    }
    expect(died).toBe(true);
    await sleep(1); // what the dead process had in flight fails at its next round trip
    // A new process: the same state and machines, new runtimes, no live transitions.
    const life2 = new Life();
    const store2 = new MemoryStateStore(data, life2);
    const r = await recoverTransition(DEPLOYMENT, { state: store2, runtimeFor: fleet.runtimeFor(DEPLOYMENT, life2), live: new LiveTransitions() });
    const generation = expectWhole(data, fleet, `crash after ${dieOn ?? 'write'} ${n} (recovery: ${r.action}, ${r.message})`);
    outcomes.set(n, { recovery: r.action, generation });
  }
  throw new Error('apply never ran to the end');
}

describe('a crash after every durable write of apply is recovered (fake machines, in-memory state)', () => {
  it('the plan moves a stateful service, upgrades, removes and adds, on three machines in dependency order', () => {
    const plan = planTransition({ generation: 1, manifest: OLD }, NEW);
    const steps = plan.steps.map((s) => `${s.action} ${s.machine}/${s.item.name}`);
    expect(steps).toEqual(expect.arrayContaining(['snapshot m1/db', 'restore m2/db', 'deactivate m3/legacy', 'activate m3/worker', 'deactivate m1/api', 'activate m1/api']));
    expect(steps.indexOf('restore m2/db')).toBeLessThan(steps.indexOf('activate m1/api'));
    expect(plan.machines).toEqual(['m1', 'm2', 'm3']);
  });

  it('a transition that succeeds: each crash point ends wholly on generation 1 or 2', async () => {
    const { crashes, outcomes } = await crashAfterEveryWrite(() => {});
    const plan = planTransition({ generation: 1, manifest: OLD }, NEW);
    // begin, a start and a done per step, commit, the record, committed, the removal, at least.
    expect(crashes).toBeGreaterThanOrEqual(2 * plan.steps.length + 4);
    expect(outcomes.size).toBe(crashes);
    const byGen = [...outcomes.values()].map((o) => o.generation);
    // Early crashes roll back; once the machines and the store recorded generation 2, it stands.
    expect(byGen[0]).toBe(1);
    expect(byGen[byGen.length - 1]).toBe(2);
    const firstNew = byGen.indexOf(2);
    expect(byGen.slice(firstNew).every((g) => g === 2)).toBe(true);
    expect([...outcomes.values()].map((o) => o.recovery)).toEqual(expect.arrayContaining(['rolled-back', 'completed']));
  });

  it('a transition whose step fails: each crash point, during the steps or the undo, ends on generation 1', async () => {
    const { crashes, outcomes } = await crashAfterEveryWrite((fleet) => fleet.machine('m3').failStep.add('activate s.worker'));
    expect(crashes).toBeGreaterThan(4);
    expect([...outcomes.values()].every((o) => o.generation === 1)).toBe(true);
  });

  it('a crash between the machines\' records: completed once every machine recorded generation 2, else rolled back', async () => {
    const { crashes, outcomes } = await crashAfterEveryWrite(() => {}, 'commit');
    expect(crashes).toBe(3); // m1, m2, m3
    expect([...outcomes]).toEqual([
      [1, { recovery: 'rolled-back', generation: 1 }],
      [2, { recovery: 'rolled-back', generation: 1 }],
      [3, { recovery: 'completed', generation: 2 }],
    ]);
  });

  it('a crash right after any step took effect on its machine, before the journal says so', async () => {
    const { crashes, outcomes } = await crashAfterEveryWrite(() => {}, 'activate');
    expect(crashes).toBe(3); // the api, the database, the worker
    expect([...outcomes.values()].every((o) => o.generation === 1 && o.recovery === 'rolled-back')).toBe(true);
  });
});

describe('recovery of a transition interrupted mid-steps, when machines are not as they were', () => {
  /** Generation 2's apply, dead after its 8th write (steps under way on every machine). */
  async function interrupted() {
    const { data, fleet } = await deployedWorld();
    const life = new Life();
    const state = new MemoryStateStore(data, life, 8);
    await expect(applyPlan(planTransition({ generation: 1, manifest: OLD }, NEW), { state, tree: noTree, runtimeFor: fleet.runtimeFor(DEPLOYMENT, life), live: new LiveTransitions() })).rejects.toBeInstanceOf(Crash);
    await sleep(1);
    const recover = () => {
      const life2 = new Life();
      return recoverTransition(DEPLOYMENT, { state: new MemoryStateStore(data, life2), runtimeFor: fleet.runtimeFor(DEPLOYMENT, life2), live: new LiveTransitions() });
    };
    return { data, fleet, recover };
  }

  it('an unreachable machine fails recovery naming it and what to do; once it answers, recovery finishes', async () => {
    const { data, fleet, recover } = await interrupted();
    fleet.machine('m2').down = true;
    await expect(recover()).rejects.toMatchObject({ code: 'RECOVERY_FAILED', data: { machines: ['m2'] }, message: expect.stringMatching(/m2: connection refused.*abandon-machine m2/s) });
    expect(data.journals.has(DEPLOYMENT)).toBe(true);
    fleet.machine('m2').down = false;
    expect((await recover()).action).toBe('rolled-back');
    expectWhole(data, fleet, 'after m2 came back');
  });

  it('a machine whose lock another owner holds now stops recovery (MACHINE_LOCKED); nothing is undone there', async () => {
    const { data, fleet, recover } = await interrupted();
    const m1 = fleet.machine('m1');
    const items = [...m1.items.keys()];
    m1.lock = { owner: 'other-host:ffff', token: 'theirs', pid: 1, takenAt: m1.now, expiresAt: m1.now + 60, now: m1.now };
    await expect(recover()).rejects.toMatchObject({ code: 'MACHINE_LOCKED' });
    expect([...m1.items.keys()]).toEqual(items);
    expect(m1.lock?.token).toBe('theirs');
    m1.now += 120; // their lease runs out
    expect((await recover()).action).toBe('rolled-back');
    expectWhole(data, fleet, 'after their lease ran out');
  });
});
