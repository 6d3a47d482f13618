import { describe, expect, it } from 'vitest';
import { findCycle, topologicalOrder } from './graph.ts';

const edges = (o: Record<string, string[]>) => new Map(Object.entries(o));

describe('graph', () => {
  it('orders dependencies before dependents', () => {
    expect(topologicalOrder(['client', 'proxy', 'server'], edges({ client: ['proxy'], proxy: ['server'] }))).toEqual(['server', 'proxy', 'client']);
  });
  it('names the cycle it finds', () => {
    expect(findCycle(['a', 'b', 'c'], edges({ a: ['b'], b: ['c'], c: ['a'] }))).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(['a', 'b'], edges({ a: ['b'] }))).toBeUndefined();
  });
  it('refuses to order a cycle', () => {
    expect(() => topologicalOrder(['a'], edges({ a: ['a'] }))).toThrow(/a -> a/);
  });
});
