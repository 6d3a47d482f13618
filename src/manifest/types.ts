/**
 * The manifest: the resolved desired (or recorded) state of a deployment. Pure, serialisable
 * data; the same shape is recorded on the machines and in the controller's state.
 */
export interface Manifest {
  version: 1;
  deployment: string;
  machines: Record<string, MachineManifest>;
  /** Every artifact an item names, by content hash, and where its bytes come from. */
  artifacts: Record<string, ArtifactRef>;
  /** Snapshots of stateful services kept per service (the root file's `snapshotsKept`), when set; not hashed. */
  snapshotsKept?: number;
  /** Hash over every machine's items and target: equal hashes mean nothing to do. */
  hash: string;
}

export interface MachineManifest {
  name: string;
  address: string;
  target: TargetSpec;
  /** Items sorted by key; infrastructure and services alike. */
  items: Item[];
}

/** How to reach a machine. Secrets are never here: `identity` is a path, not a key. */
export type TargetSpec =
  | { kind: 'ssh'; host: string; port: number; user: string; hostKey?: string; knownHosts?: string; identity?: string; trustOnFirstUse?: boolean; root: string }
  | { kind: 'local'; root?: string };

export type ItemLayer = 'infrastructure' | 'service';
export type ModuleName = 'process' | 'file' | 'script' | 'directory' | 'postgresql-database';

export interface Item {
  /** Unique on its machine and safe as a path segment: `s.NAME`, `d.NAME`, `f.HASH`, `dir.HASH`. */
  key: string;
  machine: string;
  layer: ItemLayer;
  /** What a person calls it: the service or daemon name, or the path of a file or directory. */
  name: string;
  module: ModuleName;
  container?: string;
  /** Content hash of the artifact this item runs or places, if any. */
  artifact?: string;
  spec: ItemSpec;
  /** Ids (`machine/key`) of items that must be active before this one. */
  dependsOn: string[];
  /** Services whose address this item is given (its dependsOn and connectsTo), by name. */
  bindings?: string[];
  stateful: boolean;
  /** Hash over everything that affects this item; unchanged hash, nothing to do (docs/design.md#the-manifest). */
  hash: string;
}

export type ItemSpec = ProcessSpec | FileSpec | ScriptSpec | DirectorySpec | PostgresqlDatabaseSpec;

export interface ProcessSpec {
  start: string;
  env: Record<string, string>;
  ready?: { port?: number; command?: string; timeout: number };
}
export interface FileSpec {
  path: string;
  allowed: string[];
}
export interface ScriptSpec {
  env: Record<string, string>;
}
export interface DirectorySpec {
  path: string;
  mode: string;
  allowed: string[];
}
/**
 * A database in its container's PostgreSQL server. `env` holds PGHOST (the container's `host`
 * property, else the machine's address), PGPORT (`port`, default 5432) and PGUSER (`user`,
 * default postgres), which psql, pg_dump and pg_restore read on the machine.
 */
export interface PostgresqlDatabaseSpec {
  database: string;
  env: Record<string, string>;
}

/** Where an artifact's bytes come from on the controller. */
export type ArtifactSource =
  | { kind: 'dir'; path: string }
  | { kind: 'file'; path: string; name: string; mode: string }
  | { kind: 'inline'; name: string; content: string; mode: string };

export interface ArtifactInfo {
  hash: string;
  size: number;
  files: number;
}

/**
 * An artifact of the manifest. `deploymentDir` is the deployment directory its path was checked
 * against (the root file's), so that applying reads it again inside the same bound; refs
 * recorded before it existed are read inside their own path.
 */
export type ArtifactRef = ArtifactSource & ArtifactInfo & { deploymentDir?: string };

export const itemId = (i: Pick<Item, 'machine' | 'key'>): string => `${i.machine}/${i.key}`;
