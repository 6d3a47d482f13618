import { describe, expect, it } from 'vitest';
import { Retries } from './retry.ts';

const middle = () => 0.5; // no jitter

describe('Retries: one policy and one counter per reason', () => {
  it('backs off per reason', () => {
    const r = new Retries();
    expect(r.failed('reconcile', middle)).toBe(5_000);
    expect(r.failed('reconcile', middle)).toBe(10_000);
    expect(r.failed('reconcile', middle)).toBe(20_000);
    expect(r.streak()).toBe(3);
  });

  it('a failing recovery does not lengthen the backoff of the reconcile after it', () => {
    const r = new Retries();
    r.failed('recovery', middle);
    r.failed('recovery', middle);
    r.succeeded('recovery');
    expect(r.failed('reconcile', middle)).toBe(5_000);
    expect(r.count('recovery')).toBe(0);
  });

  it('a success resets only its own reason', () => {
    const r = new Retries();
    r.failed('state', middle);
    r.failed('reconcile', middle);
    r.succeeded('reconcile');
    expect(r.count('state')).toBe(1);
    expect(r.streak()).toBe(1);
    r.succeeded('state');
    expect(r.streak()).toBe(0);
  });

  it('caps the delay', () => {
    const r = new Retries();
    let d = 0;
    for (let i = 0; i < 20; i++) d = r.failed('reconcile', middle);
    expect(d).toBe(300_000);
  });
});
