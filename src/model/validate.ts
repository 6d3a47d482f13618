import type { ModelIssue } from '../errors.ts';
import { findCycle } from '../lib/graph.ts';
import type { Models } from './types.ts';
import { databaseName, envPrefix } from './names.ts';
import { DEFAULT_ROOT, HOSTNAME } from './schema.ts';
import { validateClaims } from './validateClaims.ts';
import { validateEnvironment } from './validateEnv.ts';
import { fieldName } from './fieldPath.ts';

const OCTET = '(25[0-5]|2[0-4]\\d|1?\\d?\\d)';
const LOOPBACK = new RegExp(`^127\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Cross-file checks: references, cycles, environments, ports, paths, roots. Returns every issue found. */
export function validateModels(m: Models): ModelIssue[] {
  const issues: ModelIssue[] = [];
  const at = (kind: 'network' | 'services' | 'distribution', path: (string | number)[], message: string) =>
    issues.push({ ...m.locate(kind, path), field: fieldName(path), message });

  for (const machine of Object.values(m.machines)) {
    const base = ['machines', machine.name];
    if (machine.target === 'local' && machine.address && !LOOPBACK.test(machine.address)) {
      at('network', [...base, 'address'], `a local machine needs a loopback address (127.x.y.z), got "${machine.address}"`);
    }
    for (const [c, spec] of Object.entries(machine.containers ?? {})) {
      if (spec.daemon && !machine.daemons[spec.daemon]) {
        at('network', [...base, 'containers', c, 'daemon'], `unknown daemon "${spec.daemon}" on machine "${machine.name}"`);
      }
    }
    const root = runtimeRoot(machine);
    const insideRoot = ` is inside this machine's runtime root ${root}, where strata keeps its own records`;
    machine.files.forEach((f, i) => {
      if (!pathAllowed(f.path, machine.allowedPaths)) {
        at('network', [...base, 'files', i, 'path'], `"${f.path}" is outside this machine's allowedPaths (${(machine.allowedPaths ?? []).join(', ') || 'none declared'})`);
      } else if (root && pathWithin(f.path, root)) at('network', [...base, 'files', i, 'path'], `"${f.path}"${insideRoot}`);
    });
    (machine.directories ?? []).forEach((d, i) => {
      if (!pathAllowed(d.path, machine.allowedPaths)) {
        at('network', [...base, 'directories', i, 'path'], `"${d.path}" is outside this machine's allowedPaths (${(machine.allowedPaths ?? []).join(', ') || 'none declared'})`);
      } else if (root && pathWithin(d.path, root)) at('network', [...base, 'directories', i, 'path'], `"${d.path}"${insideRoot}`);
    });
    for (const [d, spec] of Object.entries(machine.daemons)) {
      if (spec.ready?.port && !spec.ready.port.match(/^\d+$/) && !spec.ports?.[spec.ready.port]) {
        at('network', [...base, 'daemons', d, 'ready', 'port'], `no port named "${spec.ready.port}" in this daemon's ports`);
      }
    }
  }

  for (const s of Object.values(m.services)) {
    const base = ['services', s.name];
    if (s.type === 'process' && !s.start) at('services', [...base, 'start'], 'is required for a service of type "process"');
    if (s.type === 'file' && !s.path) at('services', [...base, 'path'], 'is required for a service of type "file"');
    if ((s.type === 'file' || s.type === 'script') && !s.artifactDir) at('services', [...base, 'artifact'], `is required for a service of type "${s.type}"`);
    if (s.ready?.port && !s.ports?.[s.ready.port]) at('services', [...base, 'ready', 'port'], `no port named "${s.ready.port}" in this service's ports`);
    if (s.type === 'postgresql-database') {
      for (const f of ['start', 'path', 'ports', 'ready'] as const) {
        if (s[f] !== undefined) at('services', [...base, f], 'does not apply to a service of type "postgresql-database" (it runs in its container\'s PostgreSQL server)');
      }
      const db = databaseName(s.name);
      if (RESERVED_DATABASES.has(db)) at('services', base, `"${s.name}" would be the database "${db}", which the PostgreSQL server itself uses; rename the service`);
    }
    for (const rel of ['dependsOn', 'connectsTo'] as const) {
      s[rel].forEach((d, i) => {
        if (d === s.name) at('services', [...base, rel, i], `a service cannot name itself in ${rel}`);
        else if (!m.services[d]) at('services', [...base, rel, i], `unknown service "${d}"`);
        else if (!m.distribution[d]?.length) at('services', [...base, rel, i], `"${d}" is not distributed to any machine, so there is no address to give`);
      });
    }
  }

  // Two services whose names give the same environment prefix would overwrite each other's address.
  const prefixes = new Map<string, string>();
  for (const name of Object.keys(m.services).sort()) {
    const other = prefixes.get(envPrefix(name));
    if (other) at('services', ['services', name], `"${name}" and "${other}" both give their address as ${envPrefix(name)}_HOST; rename one`);
    else prefixes.set(envPrefix(name), name);
  }

  const deps = new Map(Object.values(m.services).map((s) => [s.name, s.dependsOn.filter((d) => m.services[d] && d !== s.name)]));
  const cycle = findCycle(deps.keys(), deps);
  if (cycle) {
    const first = cycle[0]!;
    const idx = m.services[first]!.dependsOn.indexOf(cycle[1]!);
    at('services', ['services', first, 'dependsOn', idx], `dependency cycle: ${cycle.join(' -> ')}`);
  }

  // A container holding databases says where its server listens: host, port, user.
  const checkedServers = new Set<string>();
  const checkDatabaseServer = (machine: string, container: string, props: Record<string, string | number | boolean>) => {
    if (checkedServers.has(`${machine}/${container}`)) return;
    checkedServers.add(`${machine}/${container}`);
    const where = ['machines', machine, 'containers', container, 'properties'];
    if (props.port !== undefined && !(typeof props.port === 'number' && Number.isInteger(props.port) && props.port >= 1 && props.port <= 65535)) {
      at('network', [...where, 'port'], 'expected the PostgreSQL server\'s port, a number from 1 to 65535');
    }
    if (props.user !== undefined && !(typeof props.user === 'string' && PG_ROLE.test(props.user))) at('network', [...where, 'user'], 'expected a PostgreSQL role name (letters, digits, "_")');
    if (props.host !== undefined && !(typeof props.host === 'string' && HOSTNAME.test(props.host))) at('network', [...where, 'host'], 'expected a host name or IP address');
  };

  for (const [name, placements] of Object.entries(m.distribution)) {
    const s = m.services[name];
    if (!s) {
      at('distribution', ['distribution', name], `unknown service "${name}"`);
      continue;
    }
    const seen = new Set<string>();
    placements.forEach((p, i) => {
      const path = ['distribution', name, i];
      const machine = m.machines[p.machine];
      if (!machine) {
        at('distribution', path, `unknown machine "${p.machine}"`);
        return;
      }
      if (seen.has(p.machine)) at('distribution', path, `"${name}" is placed on machine "${p.machine}" twice`);
      seen.add(p.machine);
      if (p.container && !machine.containers?.[p.container]) {
        at('distribution', path, `unknown container "${p.container}" on machine "${p.machine}"`);
      }
      if (s.type === 'postgresql-database') {
        if (!p.container) at('distribution', path, `"${name}" is a postgresql-database and must be placed into a container: { machine: ${p.machine}, container: NAME }`);
        else if (machine.containers?.[p.container]) checkDatabaseServer(p.machine, p.container, machine.containers[p.container]!.properties ?? {});
      }
      if (s.type === 'file' && s.path && !pathAllowed(s.path, machine.allowedPaths)) {
        at('distribution', path, `service "${name}" writes to ${s.path}, outside the allowedPaths of machine "${p.machine}"`);
      } else if (s.type === 'file' && s.path && runtimeRoot(machine) && pathWithin(s.path, runtimeRoot(machine)!)) {
        at('distribution', path, `service "${name}" writes to ${s.path}, inside the runtime root ${runtimeRoot(machine)} of machine "${p.machine}", where strata keeps its own records`);
      }
    });
  }
  validateEnvironment(m, at);
  validateClaims(m, at);
  return issues;
}

const PG_ROLE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const RESERVED_DATABASES = new Set(['postgres', 'template0', 'template1']);

/** Paths outside the runtime root are allowed only under a declared allowed path. */
export function pathAllowed(path: string, allowed: readonly string[] | undefined): boolean {
  return (allowed ?? []).some((a) => a === '/' || path === a || path.startsWith(`${a}/`));
}

function pathWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/**
 * The machine's runtime root when the models fix it (a local machine's default lies in the
 * state directory, unknown here). Models never write inside it: the runtime refuses that too.
 */
function runtimeRoot(machine: { target: 'ssh' | 'local'; root?: string }): string | undefined {
  return machine.root ?? (machine.target === 'local' ? undefined : DEFAULT_ROOT);
}
