import { describe, expect, it } from 'vitest';
import { hasOwn, nullPrototype, own, table } from './table.ts';

const BUILTINS = ['toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__', '__defineGetter__', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__lookupSetter__'];

describe('table', () => {
  it('inherits no member: every builtin name is absent until written, and then an ordinary key', () => {
    const t = table<number>();
    for (const k of BUILTINS) {
      expect((t as Record<string, unknown>)[k]).toBeUndefined();
      expect(k in t).toBe(false);
    }
    BUILTINS.forEach((k, i) => (t[k] = i));
    expect(Object.keys(t)).toEqual(BUILTINS);
    BUILTINS.forEach((k, i) => expect(own(t, k)).toBe(i));
    expect(JSON.parse(JSON.stringify(t))).toEqual(Object.fromEntries(BUILTINS.map((k, i) => [k, i])));
  });

  it('keeps `__proto__` from entries as data, never as the prototype', () => {
    const t = table([['__proto__', { polluted: true }]] as const);
    expect(hasOwn(t, '__proto__')).toBe(true);
    expect((t as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('nullPrototype copies parsed data into tables at every depth, arrays and scalars as they are', () => {
    const v = nullPrototype(JSON.parse('{"__proto__": {"a": 1}, "b": [{"constructor": 2}, "x", 3, null]}')) as Record<string, any>;
    expect(Object.keys(v)).toEqual(['__proto__', 'b']);
    expect(own(v, '__proto__')).toEqual({ a: 1 });
    expect(v.b[0].constructor).toBe(2);
    expect(v.b[0].toString).toBeUndefined();
    expect(v.b.slice(1)).toEqual(['x', 3, null]);
    expect(v.toString).toBeUndefined();
  });
});
