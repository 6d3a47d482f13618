import { describe, expect, it } from 'vitest';
import { isInside } from './paths.ts';

describe('isInside', () => {
  it('takes whole path components only', () => {
    expect(isInside('/etc/strata/a', '/etc/strata/a/key')).toBe(true);
    expect(isInside('/etc/strata/a', '/etc/strata/a')).toBe(true);
    expect(isInside('/etc/strata/a', '/etc/strata/ab/key')).toBe(false);
    expect(isInside('/', '/etc/shadow')).toBe(true);
  });

  it('anchors relative paths, so .. cannot climb out of the tree', () => {
    expect(isInside('.', 'models/network.yaml')).toBe(true);
    expect(isInside('models', 'models/../models/a.yaml')).toBe(true);
    expect(isInside('models', 'models/../../etc/passwd')).toBe(false);
    expect(isInside('.', '..')).toBe(false);
  });
});
