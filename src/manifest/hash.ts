import { sha256 } from '../lib/hash.ts';

/** JSON with object keys sorted at every level, so equal values hash equally. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

/**
 * A copy of v with the keys of every object in sorted order (undefined members left out), for
 * JSON.stringify to write canonically. Plain loops: planning sorts every item of large
 * manifests, and this is most of its allocation.
 */
export function sortKeys(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = sortKeys(v[i]);
    return out;
  }
  const obj = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj).sort()) {
    const x = obj[k];
    if (x !== undefined) out[k] = sortKeys(x);
  }
  return out;
}

export function hashOf(v: unknown): string {
  return sha256(canonicalJson(v));
}
