import { describe, expect, it } from 'vitest';
import { checkLayers, findCycles, layerIndex, LAYERS } from './layers.ts';

const layers = [['lib'], ['model'], ['api', 'cli']];
const edge = (from: string, to: string) => ({ from, to });

describe('layerIndex', () => {
  it('maps a file to the row of its directory or top-level file', () => {
    expect(layerIndex('lib/graph.ts', layers)).toBe(0);
    expect(layerIndex('cli/commands/plan.ts', layers)).toBe(2);
    expect(layerIndex('model.ts', layers)).toBe(1);
    expect(layerIndex('other/x.ts', layers)).toBeUndefined();
  });

  it('places src/errors.ts and src/errors/ in the same row', () => {
    expect(layerIndex('errors.ts')).toBe(layerIndex('errors/codes.ts'));
    expect(layerIndex('errors.ts')).toBe(LAYERS.findIndex((r) => r.includes('errors')));
  });
});

describe('checkLayers', () => {
  const files = ['lib/a.ts', 'lib/b.ts', 'model/m.ts', 'api/x.ts', 'cli/y.ts', 'stray/z.ts'];

  it('passes imports down the order and within a row', () => {
    const r = checkLayers(files.slice(0, 5), [edge('model/m.ts', 'lib/a.ts'), edge('api/x.ts', 'cli/y.ts'), edge('cli/y.ts', 'model/m.ts')], layers);
    expect(r).toEqual({ unplaced: [], backward: [], cycles: [] });
  });

  it('reports an import against the order, naming both files and layers', () => {
    const r = checkLayers(files, [edge('lib/a.ts', 'model/m.ts'), edge('model/m.ts', 'lib/b.ts')], layers);
    expect(r.backward).toEqual(['lib/a.ts -> model/m.ts (layer lib imports layer model)']);
  });

  it('reports a file in no layer', () => {
    expect(checkLayers(files, [], layers).unplaced).toEqual(['stray/z.ts']);
  });

  it('reports a cycle within one row as a closed path', () => {
    const r = checkLayers(files, [edge('lib/a.ts', 'lib/b.ts'), edge('lib/b.ts', 'lib/a.ts')], layers);
    expect(r.backward).toEqual([]);
    expect(r.cycles).toEqual(['lib/a.ts -> lib/b.ts -> lib/a.ts']);
  });

  it('reports a cycle and a back-edge in the same graph', () => {
    const r = checkLayers(files, [edge('api/x.ts', 'cli/y.ts'), edge('cli/y.ts', 'api/x.ts'), edge('model/m.ts', 'api/x.ts')], layers);
    expect(r.cycles).toEqual(['api/x.ts -> cli/y.ts -> api/x.ts']);
    expect(r.backward).toEqual(['model/m.ts -> api/x.ts (layer model imports layer api/cli)']);
  });
});

describe('findCycles', () => {
  it('finds one cycle per tangle, the shortest way back, and self-imports', () => {
    const cycles = findCycles(
      ['a', 'b', 'c', 'd', 'e', 'f'],
      [edge('a', 'b'), edge('b', 'c'), edge('c', 'a'), edge('b', 'a'), edge('d', 'e'), edge('f', 'f'), edge('e', 'a')],
    );
    expect(cycles).toEqual(expect.arrayContaining([['a', 'b', 'a'], ['f', 'f']]));
    expect(cycles).toHaveLength(2);
  });

  it('finds none in a graph that only fans in', () => {
    expect(findCycles(['a', 'b', 'c'], [edge('a', 'c'), edge('b', 'c'), edge('a', 'b')])).toEqual([]);
  });
});
