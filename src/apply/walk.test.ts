import { describe, expect, it } from 'vitest';
import { walkGraph } from './walk.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('walkGraph', () => {
  it('runs a node only after its dependencies, independent nodes in parallel', async () => {
    const log: string[] = [];
    let peak = 0;
    let now = 0;
    const nodes = [
      { id: 'a', after: [] },
      { id: 'b', after: [] },
      { id: 'c', after: ['a', 'b'] },
    ];
    await walkGraph(nodes, 4, async (n) => {
      now++;
      peak = Math.max(peak, now);
      log.push(`start ${n.id}`);
      await sleep(10);
      log.push(`end ${n.id}`);
      now--;
    });
    expect(peak).toBe(2);
    expect(log.indexOf('start c')).toBeGreaterThan(Math.max(log.indexOf('end a'), log.indexOf('end b')));
  });

  it('stops starting nodes after a failure and reports the skipped ones', async () => {
    const nodes = [
      { id: 'a', after: [] },
      { id: 'b', after: ['a'] },
    ];
    const r = await walkGraph(nodes, 1, async (n) => {
      if (n.id === 'a') throw new Error('boom');
    });
    expect(r.failed?.node.id).toBe('a');
    expect(r.skipped.map((n) => n.id)).toEqual(['b']);
    expect(r.done).toEqual([]);
  });

  it('respects the concurrency limit', async () => {
    let now = 0;
    let peak = 0;
    const nodes = Array.from({ length: 10 }, (_, i) => ({ id: String(i), after: [] }));
    await walkGraph(nodes, 3, async () => {
      peak = Math.max(peak, ++now);
      await sleep(5);
      now--;
    });
    expect(peak).toBe(3);
  });
});
