import { posix } from 'node:path';
import { databaseName, envPrefix } from '../model/names.ts';
import { table } from '../lib/table.ts';
import type { Machine, MachineFileDecl, Models, Service } from '../model/types.ts';
import { sha256 } from '../lib/hash.ts';
import { sortKeys } from './hash.ts';
import type { ArtifactRef, ArtifactSource, ArtifactInfo, Item, Manifest, MachineManifest, PostgresqlDatabaseSpec, TargetSpec } from './types.ts';
import { itemId } from './types.ts';
import { DEFAULT_ROOT } from '../model/schema.ts';
import { bindingPrefix } from './bindingEnv.ts';

/** Hashes an artifact's bytes; injected so this module does no I/O. */
export type HashArtifact = (source: ArtifactSource) => ArtifactInfo;

const DEFAULT_READY_TIMEOUT = 30;

/**
 * Resolves validated models into the desired manifest: one item per machine file, directory
 * and daemon, and one per service instance, with dependency addresses bound into each
 * dependent's environment. Deterministic: equal inputs give byte-equal output
 * (docs/design.md#the-manifest).
 */
export function resolveManifest(models: Models, hashArtifact: HashArtifact): Manifest {
  const artifacts = table<ArtifactRef>();
  // Many instances share an artifact: hash each source once.
  const hashed = new Map<string, ArtifactInfo>();
  const addArtifact = (source: ArtifactSource): string => {
    const key = JSON.stringify(source);
    let info = hashed.get(key);
    if (!info) {
      info = hashArtifact(source);
      hashed.set(key, info);
    }
    artifacts[info.hash] ??= { ...source, ...(source.kind === 'inline' ? {} : { deploymentDir: models.baseDir }), ...info };
    return info.hash;
  };

  const machines = table<MachineManifest>();
  for (const name of Object.keys(models.machines).sort()) {
    const m = models.machines[name]!;
    machines[name] = { name, address: m.address, target: targetOf(m), items: infrastructureItems(m, addArtifact) };
  }

  for (const serviceName of Object.keys(models.distribution).sort()) {
    const service = models.services[serviceName]!;
    for (const placement of models.distribution[serviceName]!) {
      const machine = models.machines[placement.machine]!;
      const env = sortedRecord({
        ...stringEnv(service.env),
        ...selfEnv(machine, service),
        ...containerEnv(machine, placement.container),
        ...dependencyEnv(models, service),
      });
      const bindings = [...new Set([...service.dependsOn, ...service.connectsTo])].sort();
      const artifact = service.artifactDir ? addArtifact({ kind: 'dir', path: service.artifactDir }) : undefined;
      const container = placement.container;
      const daemon = container ? machine.containers?.[container]?.daemon : undefined;
      const dependsOn = [
        ...(daemon ? [itemId({ machine: machine.name, key: `d.${daemon}` })] : []),
        ...service.dependsOn.flatMap((d) => (models.distribution[d] ?? []).map((p) => itemId({ machine: p.machine, key: `s.${d}` }))),
      ].sort();
      const spec =
        service.type === 'process'
          ? { start: service.start!, env, ready: readyOf(service.ready, service.ports) }
          : service.type === 'file'
            ? { path: service.path!, allowed: machine.allowedPaths ?? [] }
            : service.type === 'postgresql-database'
              ? databaseSpec(machine, container, service, env)
              : { env };
      machines[machine.name]!.items.push(
        withHash({
          key: `s.${service.name}`,
          machine: machine.name,
          layer: 'service',
          name: service.name,
          module: service.type,
          container,
          artifact,
          spec,
          dependsOn,
          ...(bindings.length ? { bindings } : {}),
          stateful: service.stateful ?? service.type === 'postgresql-database',
        }),
      );
    }
  }

  for (const m of Object.values(machines)) m.items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const manifest: Omit<Manifest, 'hash'> = {
    version: 1,
    deployment: models.name,
    machines,
    artifacts: sortedRecord(artifacts),
    ...(models.snapshotsKept !== undefined ? { snapshotsKept: models.snapshotsKept } : {}),
  };
  return { ...manifest, hash: manifestHash(machines) };
}

function infrastructureItems(m: Machine, addArtifact: (s: ArtifactSource) => string): Item[] {
  const allowed = m.allowedPaths ?? [];
  const items: Item[] = [];
  for (const d of m.directories ?? []) {
    items.push(withHash({ key: `dir.${sha256(d.path).slice(0, 16)}`, machine: m.name, layer: 'infrastructure', name: d.path, module: 'directory', spec: { path: d.path, mode: octal(d.mode ?? '755'), allowed }, dependsOn: [], stateful: false }));
  }
  const dirIds = items.map(itemId);
  for (const f of m.files) {
    const source = machineFileSource(f);
    items.push(
      withHash({ key: `f.${sha256(f.path).slice(0, 16)}`, machine: m.name, layer: 'infrastructure', name: f.path, module: 'file', artifact: addArtifact(source), spec: { path: posix.dirname(f.path), allowed }, dependsOn: dirIds, stateful: false }),
    );
  }
  const fileIds = items.map(itemId);
  for (const [name, d] of Object.entries(m.daemons).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const env = sortedRecord({ ...stringEnv(d.env), HOST: m.address, ...portEnv(d.ports) });
    items.push(
      withHash({
        key: `d.${name}`,
        machine: m.name,
        layer: 'infrastructure',
        name,
        module: 'process',
        artifact: d.artifactDir ? addArtifact({ kind: 'dir', path: d.artifactDir }) : undefined,
        spec: { start: d.start, env, ready: readyOf(d.ready, d.ports) },
        dependsOn: fileIds,
        stateful: false,
      }),
    );
  }
  return items;
}

/** Every artifact source the models name, so a caller can hash them (I/O) before resolving. */
export function artifactSources(models: Models): ArtifactSource[] {
  const out = new Map<string, ArtifactSource>();
  const add = (s: ArtifactSource) => out.set(JSON.stringify(s), s);
  for (const m of Object.values(models.machines)) {
    for (const f of m.files) add(machineFileSource(f));
    for (const d of Object.values(m.daemons)) if (d.artifactDir) add({ kind: 'dir', path: d.artifactDir });
  }
  for (const name of Object.keys(models.distribution)) {
    const dir = models.services[name]?.artifactDir;
    if (dir) add({ kind: 'dir', path: dir });
  }
  return [...out.values()];
}

function machineFileSource(f: MachineFileDecl): ArtifactSource {
  const name = posix.basename(f.path);
  const mode = octal(f.mode ?? '644');
  return f.sourceFile !== undefined ? { kind: 'file', path: f.sourceFile, name, mode } : { kind: 'inline', name, content: f.content ?? '', mode };
}

/**
 * Each item's key-sorted copy (its hash included), made with its hash, so that the manifest
 * hash need not sort every item again: with 10,000 items that second pass was a tenth of a plan.
 */
const sortedItems = new WeakMap<Item, Record<string, unknown>>();

/** The item with its hash: of everything about it but its ordering (`dependsOn`). */
function withHash(item: Omit<Item, 'hash'>): Item {
  const { dependsOn, ...affecting } = item;
  const sorted = sortKeys(affecting) as Record<string, unknown>;
  const hashed: Item = { ...item, hash: sha256(JSON.stringify(sorted)) };
  sortedItems.set(hashed, withMembers(sorted, { dependsOn: sortKeys(dependsOn), hash: hashed.hash }));
  return hashed;
}

/**
 * The manifest's hash: sha256 of the canonical JSON of `{ machines }` (src/manifest/hash.ts),
 * built from the items' sorted copies.
 */
function manifestHash(machines: Record<string, MachineManifest>): string {
  const sorted: Record<string, unknown> = {};
  for (const name of Object.keys(machines).sort()) {
    const { items, ...rest } = machines[name]!;
    sorted[name] = withMembers(sortKeys(rest) as Record<string, unknown>, { items: items.map((i) => sortedItems.get(i) ?? sortKeys(i)) });
  }
  return sha256(JSON.stringify({ machines: sorted }));
}

/** A key-sorted object with `extra` members added in their sorted places (values not copied). */
function withMembers(sorted: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const all: Record<string, unknown> = { ...sorted, ...extra };
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(all).sort()) if (all[k] !== undefined) out[k] = all[k];
  return out;
}

function targetOf(m: Machine): TargetSpec {
  if (m.target === 'local') return { kind: 'local', ...(m.root ? { root: m.root } : {}) };
  return {
    kind: 'ssh',
    host: m.address,
    port: m.ssh?.port ?? 22,
    user: m.ssh?.user ?? 'root',
    hostKey: m.ssh?.hostKey,
    knownHosts: m.ssh?.knownHosts,
    identity: m.ssh?.identity,
    ...(m.ssh?.trustOnFirstUse ? { trustOnFirstUse: true } : {}),
    root: m.root ?? DEFAULT_ROOT,
  };
}


function selfEnv(machine: Machine, service: Service): Record<string, string> {
  return { HOST: machine.address, STRATA_SERVICE: service.name, STRATA_MACHINE: machine.name, ...portEnv(service.ports) };
}

function portEnv(ports: Record<string, number> | undefined): Record<string, string> {
  const entries = Object.entries(ports ?? {});
  const out: Record<string, string> = {};
  if (entries[0]) out.PORT = String(entries[0][1]);
  for (const [n, p] of entries) out[`PORT_${envPrefix(n)}`] = String(p);
  return out;
}

function containerEnv(machine: Machine, container: string | undefined): Record<string, string> {
  if (!container) return {};
  const props = machine.containers?.[container]?.properties ?? {};
  return { CONTAINER: container, ...Object.fromEntries(Object.entries(props).map(([k, v]) => [`CONTAINER_${envPrefix(k)}`, String(v)])) };
}

/** Where a container's PostgreSQL server listens, from the container's properties. */
function databaseServer(machine: Machine, container: string | undefined): { host: string; port: string; user: string } {
  const props = (container ? machine.containers?.[container]?.properties : undefined) ?? {};
  return { host: String(props.host ?? machine.address), port: String(props.port ?? 5432), user: String(props.user ?? 'postgres') };
}

function databaseSpec(machine: Machine, container: string | undefined, service: Service, env: Record<string, string>): PostgresqlDatabaseSpec {
  const server = databaseServer(machine, container);
  const database = databaseName(service.name);
  return { database, env: sortedRecord({ ...env, PGHOST: server.host, PGPORT: server.port, PGUSER: server.user, PGDATABASE: database }) };
}

/**
 * Each dependsOn / connectsTo service's address: `DEP_HOST`, `DEP_PORT` (its first port),
 * `DEP_PORT_NAME` per port; with several instances, the first machine by name, and
 * `DEP_ADDRESSES` lists every `host:port`.
 */
function dependencyEnv(models: Models, service: Service): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dep of [...new Set([...service.dependsOn, ...service.connectsTo])].sort()) {
    const placements = [...(models.distribution[dep] ?? [])].sort((a, b) => (a.machine < b.machine ? -1 : 1));
    const first = placements[0];
    if (!first) continue;
    const prefix = bindingPrefix(dep);
    if (models.services[dep]?.type === 'postgresql-database') {
      // A database's address is its server's: DEP_HOST, DEP_PORT, DEP_USER and DEP_DATABASE.
      const servers = placements.map((p) => databaseServer(models.machines[p.machine]!, p.container));
      out[`${prefix}_HOST`] = servers[0]!.host;
      out[`${prefix}_PORT`] = servers[0]!.port;
      out[`${prefix}_USER`] = servers[0]!.user;
      out[`${prefix}_DATABASE`] = databaseName(dep);
      out[`${prefix}_ADDRESSES`] = servers.map((s) => `${s.host}:${s.port}`).join(',');
      continue;
    }
    const ports = Object.entries(models.services[dep]?.ports ?? {});
    out[`${prefix}_HOST`] = models.machines[first.machine]!.address;
    if (ports[0]) out[`${prefix}_PORT`] = String(ports[0][1]);
    for (const [n, p] of ports) out[`${prefix}_PORT_${envPrefix(n)}`] = String(p);
    out[`${prefix}_ADDRESSES`] = placements.map((p) => `${models.machines[p.machine]!.address}${ports[0] ? `:${ports[0][1]}` : ''}`).join(',');
  }
  return out;
}

function readyOf(ready: { port?: string; command?: string; timeout?: number } | undefined, ports: Record<string, number> | undefined) {
  if (!ready) return undefined;
  return {
    port: ready.port ? (ports?.[ready.port] ?? Number(ready.port)) : undefined,
    command: ready.command,
    timeout: ready.timeout ?? DEFAULT_READY_TIMEOUT,
  };
}

function stringEnv(env: Record<string, string | number | boolean> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, String(v)]));
}

function octal(mode: string): string {
  return mode.replace(/^0(?=[0-7]{3}$)/, '');
}

function sortedRecord<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)));
}
