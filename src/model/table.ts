/**
 * Name-keyed tables built from model data. A name is whatever the author wrote, and names such
 * as `toString`, `constructor` or `hasOwnProperty` are valid; on an ordinary object a lookup of
 * a name that is absent would find Object.prototype's member instead. Tables here have no
 * prototype, and lookups in tables that may come back from JSON (a plan, a recorded manifest)
 * go through `own`.
 */

export type Table<T> = Record<string, T>;

/** An empty table without a prototype, optionally filled from entries. */
export function table<T>(entries: Iterable<readonly [string, T]> = []): Table<T> {
  const t = Object.create(null) as Table<T>;
  // Without Object.prototype there is no `__proto__` setter: every key, that one too, is data.
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
 * A deep copy of parsed data in which every mapping has no prototype, so a key `__proto__` is an
 * ordinary key and a lookup of `constructor` finds nothing unless the file wrote it. Recursion is
 * bounded by the parser's depth limit (src/model/yamlText.ts).
 */
export function nullPrototype(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(nullPrototype);
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return v;
  // One loop, no arrays of entries: every model value passes through here.
  const t = Object.create(null) as Table<unknown>;
  for (const k of Object.keys(v)) t[k] = nullPrototype((v as Record<string, unknown>)[k]);
  return t;
}
