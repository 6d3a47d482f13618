import { posix } from 'node:path';
import { own } from '../lib/table.ts';
import type { FileSpec, Item, MachineManifest, Manifest, ProcessSpec, ScriptSpec } from './types.ts';

/**
 * What an item holds on its machine that no other deployment may hold too: a TCP port on an
 * address, or a placed path. Pure: derived from a (desired or recorded) machine manifest, so
 * the records an older strata wrote claim what they hold as well.
 */
export type Claim =
  | { kind: 'port'; machine: string; item: Item; address: string; port: number }
  /** `tree`: everything under the path is placed by the item (a file service), not only the path. */
  | { kind: 'path'; machine: string; item: Item; path: string; tree: boolean };

/** Another deployment's claim on the same machine, as its recorded generation has it. */
export interface HeldClaim {
  deployment: string;
  generation: number;
  claim: Claim;
  /** Claimed by a transition of that deployment running now, not yet recorded. */
  pending?: boolean;
}

export interface ClaimConflict {
  claim: Claim;
  held: HeldClaim;
}

/** A stable name of a claim within its machine, for comparing generations and for plan.claimSources. */
export function claimId(c: Claim): string {
  return c.kind === 'port' ? `${c.machine}/${c.item.key} port ${c.address}:${c.port}` : `${c.machine}/${c.item.key} path ${c.path}`;
}

/** Every claim the items of one machine make. */
export function machineClaims(m: MachineManifest): Claim[] {
  return m.items.flatMap((item) => itemClaims(m, item));
}

const PORT_VALUE = /^\d{1,5}$/;

function itemClaims(m: MachineManifest, item: Item): Claim[] {
  switch (item.module) {
    case 'process':
    case 'script': {
      const spec = item.spec as ProcessSpec | ScriptSpec;
      const ports: number[] = [];
      // strata sets PORT and PORT_<NAME> from the item's declared ports (src/manifest/resolve.ts).
      const env = spec.env ?? {};
      for (const k of Object.keys(env)) {
        if (!k.startsWith('PORT') || (k.length > 4 && k[4] !== '_')) continue;
        const v = env[k]!;
        if (PORT_VALUE.test(v) && !ports.includes(Number(v))) ports.push(Number(v));
      }
      const ready = (spec as ProcessSpec).ready?.port;
      if (ready !== undefined && !ports.includes(ready)) ports.push(ready);
      if (ports.length > 1) ports.sort((a, b) => a - b);
      return ports.map((port) => ({ kind: 'port', machine: m.name, item, address: m.address, port }));
    }
    case 'file':
      // A file service places a tree under its path; a machine file (infrastructure) is the one file its name says.
      return item.layer === 'service'
        ? [{ kind: 'path', machine: m.name, item, path: (item.spec as FileSpec).path, tree: true }]
        : [{ kind: 'path', machine: m.name, item, path: item.name, tree: false }];
    case 'directory':
      return [{ kind: 'path', machine: m.name, item, path: item.name, tree: false }];
    default:
      return [];
  }
}

/** The claims of `desired` that `recorded` (this deployment's current generation) did not make: only these need asking about. */
export function newClaims(recorded: Manifest | undefined, desired: Manifest): Map<string, Claim[]> {
  const out = new Map<string, Claim[]>();
  for (const m of Object.values(desired.machines)) {
    const added = machineNewClaims(own(recorded?.machines, m.name), m);
    if (added.length) out.set(m.name, added);
  }
  return out;
}

/** Whether `newClaims(recorded, desired)` has any: stops at the first machine that makes one. */
export function hasNewClaims(recorded: Manifest | undefined, desired: Manifest): boolean {
  for (const m of Object.values(desired.machines)) if (machineNewClaims(own(recorded?.machines, m.name), m).length > 0) return true;
  return false;
}

function machineNewClaims(before: MachineManifest | undefined, m: MachineManifest): Claim[] {
  const claims = machineClaims(m);
  if (!before || claims.length === 0) return claims;
  const had = new Set(machineClaims(before).map(claimId));
  return claims.filter((c) => !had.has(claimId(c)));
}

const WILDCARD = new Set(['0.0.0.0', '::', '[::]', '*']);

/** Whether two claims on one machine exclude each other. */
export function collide(a: Claim, b: Claim): boolean {
  if (a.kind === 'port' && b.kind === 'port') return a.port === b.port && (a.address === b.address || WILDCARD.has(a.address) || WILDCARD.has(b.address));
  if (a.kind === 'path' && b.kind === 'path') return a.path === b.path || (a.tree && inside(b.path, a.path)) || (b.tree && inside(a.path, b.path));
  return false;
}

function inside(path: string, dir: string): boolean {
  const rel = posix.relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !posix.isAbsolute(rel);
}

/** Each of `ours` that one of `theirs` collides with (the first such, per claim). */
export function conflicts(ours: readonly Claim[], theirs: readonly HeldClaim[]): ClaimConflict[] {
  return ours.flatMap((claim) => {
    const held = theirs.find((h) => collide(claim, h.claim));
    return held ? [{ claim, held }] : [];
  });
}

/** A claim in words: `port 5001 on 127.0.2.1`, `path /srv/www`. */
export function describeClaim(c: Claim): string {
  return c.kind === 'port' ? `port ${c.port} on ${c.address}` : `${c.tree ? 'the tree under ' : ''}path ${c.path}`;
}
