import { describe, expect, it } from 'vitest';
import { resolveManifest } from '../manifest/resolve.ts';
import type { ArtifactSource, Manifest } from '../manifest/types.ts';
import { loadModels } from '../model/load.ts';
import { planTransition } from './diff.ts';
import { formatBytes, renderPlan } from './render.ts';
import type { Plan } from './types.ts';

const ROOT = 'name: hello\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n';
const NETWORK = 'machines:\n  m1: { address: 10.0.0.1 }\n  m2: { address: 10.0.0.2 }\n';
const SERVICES = [
  'services:',
  '  server:',
  '    type: process',
  '    artifact: server',
  '    start: node server.js',
  '    ports: { main: 5000 }',
  '  client:',
  '    type: process',
  '    artifact: client',
  '    start: node client.js',
  '    dependsOn: [server]',
  '',
].join('\n');

const hashArtifact = (s: ArtifactSource) => ({ hash: `h-${s.kind === 'inline' ? s.name : s.path}`, size: 2048, files: 1 });

function manifest(distribution: string): Manifest {
  const files: Record<string, string> = { '/repo/strata.yaml': ROOT, '/repo/network.yaml': NETWORK, '/repo/services.yaml': SERVICES, '/repo/distribution.yaml': distribution };
  return resolveManifest(loadModels('/repo/strata.yaml', { readText: (p) => files[p] }), hashArtifact);
}

const first = manifest('distribution:\n  server: m1\n  client: m2\n');
const moved = manifest('distribution:\n  server: m2\n  client: m2\n');
const firstPlan = planTransition(undefined, first);
const movePlan = planTransition({ generation: 1, manifest: first }, moved);
const emptyPlan = planTransition({ generation: 2, manifest: first }, first);

describe('renderPlan json', () => {
  it('parses back to the same plan', () => {
    for (const p of [firstPlan, movePlan, emptyPlan]) {
      const text = renderPlan(p, 'json');
      expect(text.endsWith('\n')).toBe(true);
      expect(JSON.parse(text)).toEqual(p);
    }
  });

  it('keeps the basis and the generation', () => {
    const back = JSON.parse(renderPlan(movePlan, 'json')) as Plan;
    expect(back.format).toBe('strata-plan/2');
    expect(back.basis).toEqual({ generation: 1, manifestHash: first.hash });
    expect(back.generation).toBe(2);
    expect(back.steps.map((s) => s.id)).toEqual(movePlan.steps.map((s) => s.id));
  });
});

describe('renderPlan text', () => {
  it('lists the changes, the order with waits, restarts, uploads and totals', () => {
    const t = renderPlan(movePlan, 'text');
    const lines = t.split('\n');
    expect(lines[0]).toBe('hello: generation 1 → generation 2');
    expect(t).toContain('Machines touched: m1, m2');
    expect(t).toContain('> server m1 → m2 (move: moved from m1 to m2)');
    expect(t).toContain('~ client on m2 (upgrade: address of server changed)');
    const orderAt = lines.indexOf('Order:');
    expect(orderAt).toBeGreaterThan(0);
    const steps = lines.slice(orderAt + 1, orderAt + 1 + movePlan.steps.length);
    expect(steps).toEqual([
      '  1. [m2] deactivate service client',
      '  2. [m1] deactivate service server after #1',
      '  3. [m2] activate service server',
      '  4. [m2] activate service client after #3',
    ]);
    expect(t).toContain('Restarts: client on m2');
    // m2 had the client artifact already; only the server's is new there
    expect(t).toContain('Uploads: m2: 1 artifact, 2.0 KiB');
    expect(t).toContain('Plan: 0 to add, 1 to upgrade, 1 to move, 0 to remove.');
  });

  it('says where a first deployment starts from', () => {
    const t = renderPlan(firstPlan, 'text');
    expect(t.split('\n')[0]).toBe('hello: nothing deployed → generation 1');
    expect(t).toContain('+ server on m1 (add: new)');
    expect(t).toContain('2. [m2] activate service client after #1');
    expect(t).toContain('Plan: 2 to add, 0 to upgrade, 0 to move, 0 to remove.');
    expect(t).not.toContain('Restarts:');
  });

  it('says "No changes" for an empty plan and lists no order', () => {
    const t = renderPlan(emptyPlan, 'text');
    expect(t).toContain('No changes');
    expect(t).toContain('generation 2 → generation 3');
    expect(t).not.toContain('Order:');
  });
});

describe('renderPlan markdown', () => {
  it('has a table row per change', () => {
    const md = renderPlan(movePlan, 'markdown');
    const rows = md.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows).toHaveLength(movePlan.changes.length);
    expect(rows).toContain('| `~` upgrade | service | `client` | m2 | address of server changed |');
    expect(rows).toContain('| `>` move | service | `server` | m1 → m2 | moved from m1 to m2 |');
    expect(md).toContain('| | Layer | Name | Machine | Why |');
    expect(md).toContain('**0** to add, **1** to upgrade, **1** to move, **0** to remove');
    expect(md).toContain('<details><summary>Order of steps</summary>');
    expect(md).toContain('4. [m2] activate service client after #3');
  });

  it('escapes "|" so a name or reason cannot add table columns', () => {
    const plan: Plan = {
      ...movePlan,
      changes: [{ action: 'add', layer: 'infrastructure', name: '/srv/a|b', machine: 'm1', reasons: ['why | not'] }],
    };
    const md = renderPlan(plan, 'markdown');
    const row = md.split('\n').find((l) => l.includes('/srv/a'))!;
    expect(row).toContain('a\\|b');
    expect(row).toContain('why \\| not');
    // only the five column separators plus the borders remain unescaped
    expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(7);
  });

  it('keeps a name with backticks inside its code span and the steps inside their fence', () => {
    const name = '/srv/a`b```c';
    const step = { ...movePlan.steps[0]!, item: { ...movePlan.steps[0]!.item, name } };
    const plan: Plan = { ...movePlan, steps: [step], changes: [{ action: 'add', layer: 'infrastructure', name, machine: 'm1', reasons: ['new'] }] };
    const md = renderPlan(plan, 'markdown');
    // A code span delimited by more backticks than the longest run inside it.
    expect(md).toContain('````/srv/a`b```c````');
    const fences = md.split('\n').filter((l) => /^`{3,}$/.test(l));
    expect(fences).toEqual(['````', '````']);
  });

  it('says "No changes" for an empty plan, without a table', () => {
    const md = renderPlan(emptyPlan, 'markdown');
    expect(md).toContain('No changes');
    expect(md).not.toContain('| Layer |');
    expect(md.startsWith('### strata plan: hello: generation 2 → generation 3')).toBe(true);
  });
});

describe('formatBytes', () => {
  it('uses B, KiB and MiB', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
  });
});
