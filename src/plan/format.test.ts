import { describe, expect, it } from 'vitest';
import { planTransition } from './diff.ts';
import { planDestroy } from './destroy.ts';
import { planFromDocument, PLAN_FORMAT } from './format.ts';
import { planPreview } from './preview.ts';
import { planRepair } from './repair.ts';
import type { Manifest } from '../manifest/types.ts';

const manifest = (hash: string, items = true): Manifest => ({
  version: 1,
  deployment: 'web',
  machines: {
    m1: {
      name: 'm1',
      address: '10.0.0.1',
      target: { kind: 'local' },
      items: items ? [{ key: 's.a', machine: 'm1', layer: 'service', name: 'a', module: 'process', spec: { start: './a', env: {} }, dependsOn: [], stateful: false, hash: `a-${hash}` }] : [],
    },
  },
  artifacts: {},
  hash,
});

describe('plan kinds: every plan says what it is', () => {
  it('each builder makes its kind', () => {
    const current = { generation: 3, manifest: manifest('h3') };
    expect(planTransition(current, manifest('h4')).kind).toBe('transition');
    expect(planTransition(current, manifest('h1'), 'rollback').kind).toBe('rollback');
    const destroy = planDestroy(current);
    expect(destroy.kind).toBe('destroy');
    expect(destroy.steps.map((s) => `${s.action} ${s.item.name}`)).toEqual(['deactivate a']);
    const repair = planRepair(current, [{ machine: 'm1', key: 's.a', reason: 'not running' }]);
    expect(repair).toMatchObject({ kind: 'repair', generation: 3, basis: { generation: 3, manifestHash: 'h3' } });
    expect(repair.steps.map((s) => s.action)).toEqual(['deactivate', 'activate']);
  });

  it('a preview between revisions names no recorded generation', () => {
    const p = planPreview(manifest('base'), manifest('head'));
    expect(p).toMatchObject({ kind: 'preview', basis: { generation: null, manifestHash: 'base' } });
    expect(p.steps.length).toBeGreaterThan(0);
  });
});

describe('planFromDocument: saved plans of this format and the one before', () => {
  const current = { generation: 3, manifest: manifest('h3') };
  it('reads this format, and refuses an unknown kind or format', () => {
    const plan = planTransition(current, manifest('h4'));
    expect(planFromDocument(JSON.parse(JSON.stringify(plan)), 'p.json')).toEqual(plan);
    expect(() => planFromDocument({ ...plan, kind: 'teleport' }, 'p.json')).toThrow(/p\.json: kind must be one of/);
    expect(() => planFromDocument({ ...plan, format: 'strata-plan/9' }, 'p.json')).toThrow(/p\.json is not a strata plan/);
    expect(() => planFromDocument('nonsense', 'p.json')).toThrow(/not a strata plan/);
  });

  it('reads strata-plan/1, which had no kind: a repair recorded the generation it started from', () => {
    const { kind: _t, ...transition } = planTransition(current, manifest('h4'));
    expect(planFromDocument({ ...transition, format: 'strata-plan/1' }, 'old.json')).toMatchObject({ format: PLAN_FORMAT, kind: 'transition' });
    const { kind: _r, ...repair } = planRepair(current, [{ machine: 'm1', key: 's.a', reason: 'gone' }]);
    expect(planFromDocument({ ...repair, format: 'strata-plan/1' }, 'old.json')).toMatchObject({ format: PLAN_FORMAT, kind: 'repair' });
  });
});
