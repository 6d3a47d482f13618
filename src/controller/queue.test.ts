import { describe, expect, it } from 'vitest';
import { backoffDelay, formatDuration } from '../lib/backoff.ts';
import { KeyedQueue } from './queue.ts';

describe('KeyedQueue', () => {
  it('de-duplicates keys that wait', async () => {
    const q = new KeyedQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.next()).toBe('a');
    expect(await q.next()).toBe('b');
  });

  it('never hands out a key while it is being worked on; an add meanwhile requeues it after', async () => {
    const q = new KeyedQueue();
    q.add('a');
    expect(await q.next()).toBe('a');
    q.add('a');
    expect(q.length).toBe(0);
    expect(q.isActive('a')).toBe(true);
    q.done('a');
    expect(q.length).toBe(1);
    expect(await q.next()).toBe('a');
  });

  it('wakes a waiting worker, keeps the earliest delayed add, and closes', async () => {
    const q = new KeyedQueue();
    const waiting = q.next();
    q.add('x');
    expect(await waiting).toBe('x');
    q.done('x');
    q.addAfter('y', 60_000);
    q.addAfter('y', 20);
    q.addAfter('y', 60_000);
    expect(q.dueAt('y')! - Date.now()).toBeLessThan(1000);
    expect(await q.next()).toBe('y');
    const pending = q.next();
    q.close();
    expect(await pending).toBeUndefined();
  });
});

describe('backoff', () => {
  it('doubles from the base up to the cap, within ±20 %', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, { baseMs: 1000, random: mid }))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffDelay(30, { baseMs: 1000, maxMs: 60_000, random: mid })).toBe(60_000);
    expect(backoffDelay(1, { baseMs: 1000, random: () => 0 })).toBe(800);
    expect(backoffDelay(1, { baseMs: 1000, random: () => 1 })).toBe(1200);
  });
  it('formats durations for log lines', () => {
    expect([formatDuration(250), formatDuration(4200), formatDuration(30_000), formatDuration(125_000)]).toEqual(['250ms', '4.2s', '30s', '2m5s']);
  });
});
