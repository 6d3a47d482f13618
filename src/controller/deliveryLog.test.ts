import { describe, expect, it } from 'vitest';
import { DeliveryLog } from './deliveryLog.ts';

describe('DeliveryLog', () => {
  it('remembers an id for an hour from its first delivery, then forgets it', () => {
    let now = 1_000_000;
    const log = new DeliveryLog({ now: () => now });
    expect(log.seen('a')).toBeUndefined();
    log.record('a');
    now += 59 * 60_000;
    log.record('a'); // seen again: not renewed
    expect(log.seen('a')).toBe(1_000_000);
    now += 60_001;
    expect(log.seen('a')).toBeUndefined();
    expect(log.size).toBe(0);
  });

  it('holds at most `capacity` ids, dropping the oldest first', () => {
    const log = new DeliveryLog({ capacity: 3 });
    for (const id of ['a', 'b', 'c', 'd']) log.record(id);
    expect(log.size).toBe(3);
    expect(log.seen('a')).toBeUndefined();
    expect(['b', 'c', 'd'].map((id) => log.seen(id) !== undefined)).toEqual([true, true, true]);
  });

  it('stays bounded under a flood of distinct ids', () => {
    const log = new DeliveryLog({ capacity: 100 });
    for (let i = 0; i < 10_000; i++) log.record(`id-${i}`);
    expect(log.size).toBe(100);
    expect(log.seen('id-9999')).toBeDefined();
  });
});
