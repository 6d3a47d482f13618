/**
 * Name-keyed tables built from model data. A name is whatever the author wrote, and names such
 * as `toString`, `constructor` or `hasOwnProperty` are valid; on an ordinary object a lookup of
 * a name that is absent would find Object.prototype's member instead. Tables here inherit
 * nothing (their prototype is an empty, frozen object without a prototype), and lookups in
 * tables that may come back from JSON (a plan, a recorded manifest) go through `own`.
 */

export type Table<T> = Record<string, T>;

/**
 * The prototype of every table: an object with no members and no prototype, frozen. A table
 * inherits nothing from it, exactly as with no prototype at all; and V8 keeps an object made with
 * a prototype in its fast (shape-based) mode, whereas `Object.create(null)` makes a dictionary,
 * ~4x slower to fill and read, which every model mapping passing through here made planning pay.
 */
const NO_MEMBERS: object = Object.freeze(Object.create(null));

/** An empty table that inherits no member (see NO_MEMBERS), optionally filled from entries. */
export function table<T>(entries: Iterable<readonly [string, T]> = []): Table<T> {
  const t = Object.create(NO_MEMBERS) as Table<T>;
  // Without Object.prototype in the chain there is no `__proto__` setter: every key, that one too, is data.
  for (const [k, v] of entries) t[k] = v;
  return t;
}

/** t[k] if t itself holds k, never a member inherited from Object.prototype. */
export function own<T>(t: Readonly<Record<string, T>> | undefined | null, k: string): T | undefined {
  return t != null && Object.hasOwn(t, k) ? t[k] : undefined;
}

/** Whether t itself holds k. */
export function hasOwn(t: object | undefined | null, k: string): boolean {
  return t != null && Object.hasOwn(t, k);
}

/**
 * A deep copy of parsed data in which every mapping is a table (inherits nothing), so a key `__proto__` is an
 * ordinary key and a lookup of `constructor` finds nothing unless the file wrote it. Recursion is
 * bounded by the parser's depth limit (src/model/yamlText.ts).
 */
export function nullPrototype(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(nullPrototype);
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return v;
  // One loop, no arrays of entries: every model value passes through here.
  const t = table<unknown>();
  for (const k of Object.keys(v)) t[k] = nullPrototype((v as Record<string, unknown>)[k]);
  return t;
}
