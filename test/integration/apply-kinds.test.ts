import { describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/apply/apply.ts';
import { LiveTransitions } from '../../src/apply/liveTransitions.ts';
import type { Manifest } from '../../src/manifest/types.ts';
import { planTransition } from '../../src/plan/diff.ts';
import { planPreview } from '../../src/plan/preview.ts';
import { planRepair } from '../../src/plan/repair.ts';
import type { Tree } from '../../src/tree/tree.ts';
import { FakeFleet, Life } from '../support/fakeRuntime.ts';
import { MemoryState, MemoryStateStore } from '../support/memoryState.ts';

// Apply branches on the plan's kind (docs/plan-format.md), with fake machines and an in-memory store.

const manifest = (hash: string): Manifest => ({
  version: 1,
  deployment: 'web',
  machines: { m1: { name: 'm1', address: '10.0.0.1', target: { kind: 'local' }, items: [{ key: 's.a', machine: 'm1', layer: 'service', name: 'a', module: 'process', spec: { start: `./a ${hash}`, env: {} }, dependsOn: [], stateful: false, hash: `a-${hash}` }] } },
  artifacts: {},
  hash,
});
const noFiles: Tree = { label: 'no files', rootedAt: 'repository', readFile: async () => undefined, list: async () => undefined, kind: async () => undefined, readLink: async () => undefined };

function world() {
  const fleet = new FakeFleet();
  const life = new Life();
  const state = new MemoryStateStore(new MemoryState(), life);
  const opts = { state, tree: noFiles, runtimeFor: fleet.runtimeFor('web', life), live: new LiveTransitions() };
  return { fleet, state, opts };
}

describe('apply by plan kind', () => {
  it('refuses a preview between revisions before touching anything', async () => {
    const { fleet, state, opts } = world();
    await expect(applyPlan(planPreview(manifest('base'), manifest('head')), opts)).rejects.toMatchObject({ code: 'PLAN_NOT_APPLIABLE' });
    expect(fleet.machines.size).toBe(0);
    expect(state.hasJournal('web')).toBe(false);
  });

  it('a repair puts the drifted item back and records no generation, on the machines or in the store', async () => {
    const { fleet, state, opts } = world();
    await applyPlan(planTransition(undefined, manifest('h1')), opts);
    const m1 = fleet.machine('m1');
    m1.items.clear(); // drift: the item is gone
    const repair = planRepair(state.current('web')!, [{ machine: 'm1', key: 's.a', reason: 'not running' }]);
    const r = await applyPlan(repair, opts);
    expect(r.generation).toBe(1);
    expect([...m1.items.keys()]).toEqual(['s.a']);
    expect(m1.history).toEqual([1]);
    expect(state.generations('web')).toEqual([1]);
    expect(state.hasJournal('web')).toBe(false);
  });

  it('a transition records the next generation on the machine and in the store', async () => {
    const { fleet, state, opts } = world();
    await applyPlan(planTransition(undefined, manifest('h1')), opts);
    await applyPlan(planTransition(state.current('web'), manifest('h2')), opts);
    expect(fleet.machine('m1').history).toEqual([1, 2]);
    expect(state.current('web')?.manifest.hash).toBe('h2');
  });
});
