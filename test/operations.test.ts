import { FsTree } from '../src/tree/fsTree.ts';
import { contextFor } from '../src/api/services.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApplyDeploymentOptions } from '../src/api/apply.ts';
import { applyRollback, planRollback } from '../src/api/rollback.ts';
import type { ApplyResult } from '../src/apply/apply.ts';
import type { Manifest } from '../src/manifest/types.ts';
import type { Plan } from '../src/plan/types.ts';
import { FileStateStore } from '../src/state/fileState.ts';
import type { GenerationRecord } from '../src/state/records.ts';

// The library operations the CLI and the controller share (src/api), with a real file state
// store in a temporary directory and a fake apply in place of the machines.
const manifest = (hash: string): Manifest => ({ version: 1, deployment: 'hello', machines: {}, artifacts: {}, hash });
const commitOf = (sha: string): NonNullable<GenerationRecord['commit']> => ({ sha, author: { name: 'ada', email: 'ada@example.org' }, message: `commit ${sha}`, time: '2026-12-01T00:00:00.000Z' });

let dir: string;
let store: FileStateStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-operations-'));
  store = new FileStateStore(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Records what apply was asked, and records the generation the way applyPlan does (its journal's `record`). */
function fakeApply(asked: ApplyDeploymentOptions[]) {
  return async (plan: Plan, _ctx: unknown, opts: ApplyDeploymentOptions = {}): Promise<ApplyResult> => {
    asked.push(opts);
    const generation = store.nextGeneration(plan.deployment);
    const { source, commit, rolledBackTo } = opts;
    store.record(plan.deployment, { generation, createdAt: new Date().toISOString(), manifest: plan.desired, ...(source ? { source } : {}), ...(commit ? { commit } : {}), ...(rolledBackTo !== undefined ? { rolledBackTo } : {}) });
    return { generation, steps: plan.steps.length, uploaded: {}, bytesSent: 0, durationMs: 0 };
  };
}

describe('applyRollback (the CLI and the controller alike)', () => {
  it('records the generation rolled back to and the commit its models came from', async () => {
    store.record('hello', { generation: 1, createdAt: '2026-12-01T00:00:00.000Z', manifest: manifest('one'), commit: commitOf('a'.repeat(40)) });
    store.record('hello', { generation: 2, createdAt: '2026-12-02T00:00:00.000Z', manifest: manifest('two'), commit: commitOf('b'.repeat(40)) });
    const asked: ApplyDeploymentOptions[] = [];
    const ctx = contextFor({ stateDir: dir });
    const r = await applyRollback(planRollback('hello', ctx), ctx, { apply: fakeApply(asked) });
    expect(asked).toEqual([{ rolledBackTo: 1, source: 'rollback to generation 1', commit: commitOf('a'.repeat(40)) }]);
    expect(r).toMatchObject({ generation: 3, rolledBackTo: 1, commit: { sha: 'a'.repeat(40) } });
    expect(store.generation('hello', 3)).toMatchObject({ rolledBackTo: 1, commit: { sha: 'a'.repeat(40) }, manifest: { hash: 'one' } });
  });

  it('records no commit when the generation rolled back to had none (models read from disk)', async () => {
    store.record('hello', { generation: 1, createdAt: '2026-12-01T00:00:00.000Z', manifest: manifest('one'), source: '/srv/hello/strata.yaml' });
    store.record('hello', { generation: 2, createdAt: '2026-12-02T00:00:00.000Z', manifest: manifest('two'), commit: commitOf('b'.repeat(40)) });
    store.record('hello', { generation: 3, createdAt: '2026-12-03T00:00:00.000Z', manifest: manifest('three') });
    const asked: ApplyDeploymentOptions[] = [];
    const ctx = contextFor({ stateDir: dir });
    const r = await applyRollback(planRollback('hello', ctx, 1), ctx, { apply: fakeApply(asked) });
    expect(asked).toEqual([{ rolledBackTo: 1, source: 'rollback to generation 1' }]);
    expect(r.commit).toBeUndefined();
    expect(store.generation('hello', 4).commit).toBeUndefined();
  });

  it('passes the other apply options through', async () => {
    store.record('hello', { generation: 1, createdAt: '2026-12-01T00:00:00.000Z', manifest: manifest('one'), commit: commitOf('a'.repeat(40)) });
    store.record('hello', { generation: 2, createdAt: '2026-12-02T00:00:00.000Z', manifest: manifest('two') });
    const asked: ApplyDeploymentOptions[] = [];
    const ctx = contextFor({ stateDir: dir });
    const tree = new FsTree();
    await applyRollback(planRollback('hello', ctx), ctx, { apply: fakeApply(asked), tree });
    expect(asked[0]).toMatchObject({ rolledBackTo: 1 });
    expect(asked[0]!.tree).toBe(tree);
    expect(asked[0]!.rebaseAfterRecovery).toBeUndefined();
  });
});
