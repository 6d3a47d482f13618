import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stateStore } from '../../src/api/context.ts';
import { loadDeployment } from '../../src/api/load.ts';
import { planDeployment } from '../../src/api/plan.ts';
import { claimSources } from '../../src/manifest/claimSources.ts';
import { newClaims } from '../../src/manifest/claims.ts';
import { contextFor } from '../../src/api/services.ts';

// The real example models on disk; planning contacts no machine.
const EXAMPLE = path.resolve(import.meta.dirname, '../../examples/hello-world');
const ROOT = path.join(EXAMPLE, 'strata.yaml');
const dirs: string[] = [];
const stateDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'strata-claim-sources-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Line and column of the first `word` on the first line of services.yaml that contains `line`. */
function positionIn(file: string, line: string, word: string): { line: number; column: number } {
  const lines = readFileSync(path.join(EXAMPLE, file), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(line));
  return { line: i + 1, column: lines[i]!.indexOf(word, lines[i]!.indexOf(line)) + 1 };
}

describe('plan.claimSources (computed when first read)', () => {
  it('names the model field of every claim a first plan adds, in the plan object, its JSON and its copies', async () => {
    const plan = await planDeployment(ROOT, contextFor({ stateDir: stateDir() }));
    expect(Object.keys(plan)).toContain('claimSources');
    const server = plan.claimSources?.['test2/s.hello-world-server port 127.0.2.2:5000'];
    expect(server).toEqual({ file: path.join(EXAMPLE, 'services.yaml'), ...positionIn('services.yaml', 'ports: { main: 5000 }', 'main'), field: 'services.hello-world-server.ports.main' });
    // The same positions as computed eagerly for the claims the plan adds.
    const { models, manifest } = await loadDeployment(ROOT);
    const eager = claimSources(models, [...newClaims(undefined, manifest).values()].flat());
    expect(plan.claimSources).toEqual({ ...eager });
    expect(Object.keys(plan.claimSources!)).toHaveLength(3);
    expect(JSON.parse(JSON.stringify(plan)).claimSources).toEqual({ ...eager });
    expect({ ...plan }.claimSources).toEqual({ ...eager });
  });

  it('a plan that adds no claim to the recorded generation has none', async () => {
    const dir = stateDir();
    const { manifest } = await loadDeployment(ROOT);
    stateStore(contextFor({ stateDir: dir })).record(manifest.deployment, { generation: 1, createdAt: new Date().toISOString(), manifest, source: ROOT });
    const plan = await planDeployment(ROOT, contextFor({ stateDir: dir }));
    expect(plan.steps).toHaveLength(0);
    expect('claimSources' in plan).toBe(false);
  });

  it('can be replaced, as a plan read from JSON carries its own', async () => {
    const plan = await planDeployment(ROOT, contextFor({ stateDir: stateDir() }));
    plan.claimSources = { x: { file: 'f', line: 1, column: 2, field: 'y' } };
    expect(plan.claimSources).toEqual({ x: { file: 'f', line: 1, column: 2, field: 'y' } });
  });
});
