import { envPrefix } from './names.ts';
import type { Models } from './types.ts';
import { fieldName } from './fieldPath.ts';

type Kind = 'network' | 'services' | 'distribution';
type At = (kind: Kind, path: (string | number)[], message: string) => void;

/**
 * Variables strata sets itself (src/manifest/resolve.ts, and STATE_DIR in the target runtime):
 * an `env` key among them would silently win or lose, so it is refused. The namespaces are
 * reserved whole (PORT_*, STRATA_*, CONTAINER_*), not only the names set today.
 */
const RESERVED = /^(?:HOST|PORT|STATE_DIR|CONTAINER)$|^(?:PORT|STRATA|CONTAINER)_/;
/** What a postgresql-database service's tools read; strata sets them from its container. */
const DATABASE_RESERVED = new Set(['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE']);

/** Where a variable strata sets comes from: a model field, and words for a message. */
interface Origin {
  kind: Kind;
  path: (string | number)[];
  what: string;
}

/**
 * The environment of every service instance and daemon: no `env` key that strata sets, and no
 * two names (ports, container properties, dependencies) that give the same variable.
 */
export function validateEnvironment(m: Models, at: At): void {
  for (const machine of Object.values(m.machines)) {
    for (const [d, spec] of Object.entries(machine.daemons)) {
      const base = ['machines', machine.name, 'daemons', d];
      const set = new Map<string, Origin>();
      const give = variableGiver(set, at, m);
      give('HOST', { kind: 'network', path: ['machines', machine.name, 'address'], what: "the machine's address" });
      portVariables(spec.ports, { kind: 'network', path: base }, give);
      reservedKeys(spec.env, { kind: 'network', path: [...base, 'env'] }, set, at, false);
    }
  }
  for (const s of Object.values(m.services)) {
    const placements = m.distribution[s.name] ?? [];
    if (placements.length === 0) continue;
    // What a service is given is the same on every machine but for its container's variables.
    const base = ['services', s.name];
    const set = new Map<string, Origin>();
    const give = variableGiver(set, at, m);
    for (const v of ['HOST', 'STRATA_SERVICE', 'STRATA_MACHINE']) give(v, { kind: 'services', path: base, what: 'strata itself' });
    portVariables(s.ports, { kind: 'services', path: base }, give);
    for (const rel of ['dependsOn', 'connectsTo'] as const) {
      s[rel].forEach((dep, j) => {
        const origin = { kind: 'services' as const, path: [...base, rel, j], what: `dependency "${dep}"` };
        for (const v of dependencyVariables(m, dep)) give(v, origin);
      });
    }
    reservedKeys(s.env, { kind: 'services', path: [...base, 'env'] }, set, at, s.type === 'postgresql-database');
    const containers = new Set<string>();
    placements.forEach((p, i) => {
      if (!p.container || containers.has(`${p.machine}/${p.container}`)) return;
      containers.add(`${p.machine}/${p.container}`);
      // A copy: one container's variables do not meet another's.
      const withContainer = new Map(set);
      const giveHere = variableGiver(withContainer, at, m);
      giveHere('CONTAINER', { kind: 'distribution', path: ['distribution', s.name, i], what: `container "${p.container}"` });
      for (const k of Object.keys(m.machines[p.machine]?.containers?.[p.container]?.properties ?? {})) {
        giveHere(`CONTAINER_${envPrefix(k)}`, { kind: 'network', path: ['machines', p.machine, 'containers', p.container, 'properties', k], what: `property "${k}" of container "${p.container}"` });
      }
    });
  }
}

/** Records a variable strata sets; a second origin for the same variable is an issue at the second. */
function variableGiver(set: Map<string, Origin>, at: At, m: Models) {
  return (name: string, origin: Origin) => {
    const first = set.get(name);
    if (!first) {
      set.set(name, origin);
      return;
    }
    if (first.what === origin.what) return;
    const where = m.locate(first.kind, first.path);
    at(origin.kind, origin.path, `${origin.what} gives the variable ${name}, which ${first.what} (${fieldName(first.path)}, ${where.file}:${where.line}:${where.column}) gives too; rename one`);
  };
}

function portVariables(ports: Record<string, number> | undefined, owner: { kind: Kind; path: (string | number)[] }, give: (v: string, o: Origin) => void): void {
  const names = Object.keys(ports ?? {});
  if (names.length > 0) give('PORT', { kind: owner.kind, path: [...owner.path, 'ports', names[0]!], what: `port "${names[0]}"` });
  for (const n of names) give(`PORT_${envPrefix(n)}`, { kind: owner.kind, path: [...owner.path, 'ports', n], what: `port "${n}"` });
}

/** The variables a dependency's address is given under (src/manifest/resolve.ts, dependencyEnv). */
function dependencyVariables(m: Models, dep: string): string[] {
  const prefix = envPrefix(dep);
  const s = m.services[dep];
  if (s?.type === 'postgresql-database') return ['HOST', 'PORT', 'USER', 'DATABASE', 'ADDRESSES'].map((v) => `${prefix}_${v}`);
  const ports = Object.keys(s?.ports ?? {});
  return [`${prefix}_HOST`, ...(ports.length ? [`${prefix}_PORT`] : []), ...ports.map((n) => `${prefix}_PORT_${envPrefix(n)}`), `${prefix}_ADDRESSES`];
}

function reservedKeys(env: Record<string, unknown> | undefined, owner: { kind: Kind; path: (string | number)[] }, set: Map<string, Origin>, at: At, database: boolean): void {
  for (const key of Object.keys(env ?? {})) {
    const origin = set.get(key);
    const path = [...owner.path, key];
    if (origin) at(owner.kind, path, `"${key}" is set by strata (from ${origin.what}); an env entry cannot replace it, choose another name`);
    else if (RESERVED.test(key)) at(owner.kind, path, `"${key}" is reserved for variables strata sets (HOST, PORT, PORT_*, STATE_DIR, STRATA_*, CONTAINER, CONTAINER_*); choose another name`);
    else if (database && DATABASE_RESERVED.has(key)) at(owner.kind, path, `"${key}" is set by strata from the container's PostgreSQL server; choose another name`);
  }
}
