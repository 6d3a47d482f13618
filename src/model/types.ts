import type { MachineInput, ServiceInput } from './schema.ts';
import type { SourcePos } from '../errors.ts';

/** A machine after its network files were merged; paths in it are resolved. */
export interface Machine extends Omit<MachineInput, 'target' | 'address' | 'files' | 'daemons'> {
  name: string;
  target: 'ssh' | 'local';
  address: string;
  files: MachineFileDecl[];
  daemons: Record<string, DaemonDecl>;
}

export interface MachineFileDecl {
  path: string;
  mode?: string;
  content?: string;
  /** Resolved repository path of `source`, when given. */
  sourceFile?: string;
}

export interface DaemonDecl {
  start: string;
  /** Resolved repository directory of `artifact`, when given. */
  artifactDir?: string;
  env?: Record<string, string | number | boolean>;
  ports?: Record<string, number>;
  ready?: { port?: string; command?: string; timeout?: number };
}

export interface Service extends Omit<ServiceInput, 'artifact'> {
  name: string;
  /** Resolved repository directory of `artifact`, when given. */
  artifactDir?: string;
  dependsOn: string[];
  connectsTo: string[];
}

export interface Placement {
  machine: string;
  container?: string;
}

/** The models of one deployment, merged and validated. Pure data. */
export interface Models {
  name: string;
  rootFile: string;
  /** Directory every repository path must stay inside (the root file's directory by default). */
  baseDir: string;
  machines: Record<string, Machine>;
  services: Record<string, Service>;
  distribution: Record<string, Placement[]>;
  /** Snapshots of stateful services kept per service (root file `snapshotsKept`), when set. */
  snapshotsKept?: number;
  /** Where a field of the merged models was written, for errors found later. */
  locate: Locator;
}

export type Locator = (kind: 'network' | 'services' | 'distribution', path: readonly (string | number)[]) => SourcePos;
