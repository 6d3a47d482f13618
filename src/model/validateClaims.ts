import { posix } from 'node:path';
import { isInside } from '../lib/paths.ts';
import { DEFAULT_ROOT } from './schema.ts';
import type { Machine, Models } from './types.ts';
import { fieldName } from './fieldPath.ts';

type Kind = 'network' | 'services' | 'distribution';
type At = (kind: Kind, path: (string | number)[], message: string) => void;

/**
 * Directories no runtime root may be: strata creates its store, items and state inside the
 * root and removes what it placed there, which must never be mixed with what the system keeps.
 */
const SYSTEM_DIRECTORIES = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share', '/var', '/var/lib', '/var/log', '/var/run', '/var/tmp',
]);

interface Claim {
  kind: Kind;
  path: (string | number)[];
  what: string;
  machine: string;
}

/**
 * Claims on what machines share: a port on an address (two machines may have the same address),
 * a path on a host's filesystem (every `local` machine is the controller's host), and a
 * runtime root. Two claims on one thing are refused at the second, naming the first.
 */
export function validateClaims(m: Models, at: At): void {
  const ports = new Map<string, Claim>();
  const paths = new Map<string, Claim>();
  const roots = new Map<string, Claim>();
  const claim = (table: Map<string, Claim>, key: string, c: Claim, describe: (first: Claim) => string) => {
    const first = table.get(key);
    if (!first) return void table.set(key, c);
    const where = m.locate(first.kind, first.path);
    at(c.kind, c.path, `${describe(first)} (${fieldName(first.path)}, ${where.file}:${where.line}:${where.column})`);
  };
  const machines = Object.values(m.machines);
  const host = new Map(machines.map((x) => [x.name, hostOf(x.address)]));

  const claimPort = (machine: Machine, port: number, c: Claim) => {
    const key = `${host.get(machine.name)} ${port}`;
    if (!ports.has(key)) return void ports.set(key, c);
    claim(ports, key, c, (first) =>
      first.machine === machine.name
        ? `port ${port} on machine "${machine.name}" is already used by ${first.what}`
        : `port ${port} on machine "${machine.name}" is already used by ${first.what} on machine "${first.machine}", which has the same address ${machine.address}`,
    );
  };
  const claimPath = (machine: Machine, path: string, c: Claim) =>
    claim(paths, `${filesystemOf(machine)} ${posix.normalize(path)}`, c, (first) =>
      `${c.what} places ${path}, which ${first.what}${first.machine === machine.name ? '' : ` on machine "${first.machine}" (the same host)`} places too`,
    );

  for (const machine of machines) {
    const base = ['machines', machine.name];
    for (const [d, spec] of Object.entries(machine.daemons)) {
      for (const [pn, p] of Object.entries(spec.ports ?? {})) claimPort(machine, p, { kind: 'network', path: [...base, 'daemons', d, 'ports', pn], what: `daemon "${d}"`, machine: machine.name });
    }
    machine.files.forEach((f, i) => claimPath(machine, f.path, { kind: 'network', path: [...base, 'files', i, 'path'], what: `a machine file of "${machine.name}"`, machine: machine.name }));
    (machine.directories ?? []).forEach((d, i) => claimPath(machine, d.path, { kind: 'network', path: [...base, 'directories', i, 'path'], what: `a directory of "${machine.name}"`, machine: machine.name }));
    checkRoot(machine, at, roots, claim);
  }
  for (const name of Object.keys(m.distribution)) {
    const s = m.services[name];
    if (!s) continue;
    const servicePorts = Object.entries(s.ports ?? {});
    if (servicePorts.length === 0 && !(s.type === 'file' && s.path)) continue;
    (m.distribution[name] ?? []).forEach((p, i) => {
      const machine = m.machines[p.machine];
      if (!machine) return;
      const path = ['distribution', name, i];
      for (const [pn, port] of servicePorts) claimPort(machine, port, { kind: 'distribution', path, what: `service "${name}" (port ${pn})`, machine: machine.name });
      if (s.type === 'file' && s.path) claimPath(machine, s.path, { kind: 'distribution', path, what: `file service "${name}"`, machine: machine.name });
    });
  }
  // The SSH server holds its port on every ssh machine; a service there cannot take it.
  for (const machine of machines) {
    if (machine.target !== 'ssh') continue;
    const sshPort = machine.ssh?.port ?? 22;
    const first = ports.get(`${host.get(machine.name)} ${sshPort}`);
    if (first && first.machine === machine.name) at(first.kind, first.path, `port ${sshPort} on machine "${machine.name}" is where strata reaches it over SSH (ssh.port); ${first.what} cannot use it`);
  }
}

function checkRoot(machine: Machine, at: At, roots: Map<string, Claim>, claim: (t: Map<string, Claim>, key: string, c: Claim, d: (f: Claim) => string) => void): void {
  const field = ['machines', machine.name, 'root'];
  // A local machine without a root gets its own directory in the state directory.
  if (machine.target === 'local' && machine.root === undefined) return;
  const root = posix.normalize(machine.root ?? DEFAULT_ROOT);
  if (SYSTEM_DIRECTORIES.has(root)) {
    at('network', field, `"${root}" cannot be the runtime root: strata keeps and removes its own files there, and it is a system directory; use a directory of its own such as ${DEFAULT_ROOT}`);
    return;
  }
  for (const [i, allowed] of (machine.allowedPaths ?? []).entries()) {
    const a = posix.normalize(allowed);
    if (isInside(a, root) || isInside(root, a)) {
      at('network', ['machines', machine.name, 'allowedPaths', i], `"${allowed}" overlaps the runtime root ${root}${machine.root === undefined ? ' (the default)' : ''}: file services and machine files must not write where strata keeps its records`);
    }
  }
  claim(roots, `${filesystemOf(machine)} ${root}`, { kind: 'network', path: field, what: `machine "${machine.name}"`, machine: machine.name }, (first) => `machine "${machine.name}" has the runtime root ${root} on the same host as ${first.what}; their records would mix, give one another root`);
}

/** An address as a key: host names are case-insensitive, IPv6 may be written in brackets. */
function hostOf(address: string): string {
  return address.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** Which filesystem a machine writes to: the controller's own for local machines, else its SSH endpoint's. */
function filesystemOf(machine: Machine): string {
  return machine.target === 'local' ? 'local' : `${hostOf(machine.address)}:${machine.ssh?.port ?? 22}`;
}
