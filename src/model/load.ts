import { posix } from 'node:path';
import type { ModelIssue } from '../errors.ts';
import { ModelError } from '../errors.ts';
import { isInside } from '../lib/paths.ts';
import { describeDir, type ParsedFile } from './files.ts';
import { mergeNetwork } from './mergeNetwork.ts';
import { nullPrototype, table } from '../lib/table.ts';
import { rootFile, schemas, type ModelKind } from './schema.ts';
import type { Models, Placement, Service } from './types.ts';
import { validateModels } from './validate.ts';
import { fieldName, type FieldPath } from './fieldPath.ts';
import { parseYaml } from './yamlSource.ts';
import { toModelIssues } from './zodIssues.ts';

/**
 * Reads one model file: its bytes (decoded here, strictly, as UTF-8) or its text; the caller
 * decides where files come from (disk, a Git tree).
 */
export type ReadText = (path: string) => string | Uint8Array | undefined;

export interface LoadOptions {
  readText: ReadText;
  /** Repository paths must stay inside this directory (default: the root file's directory). */
  baseDir?: string;
}

/**
 * Loads a deployment from its root file: parses and validates every model file, merges the
 * network files, and checks every reference. Throws ModelError with every issue found.
 */
export function loadModels(rootPath: string, opts: LoadOptions): Models {
  const issues: ModelIssue[] = [];
  const rootFilePath = posix.normalize(rootPath);
  const baseDir = posix.normalize(opts.baseDir ?? posix.dirname(rootFilePath));

  const root = parseModelFile(rootFilePath, 'root', opts.readText, issues);
  if (!root) throw new ModelError(issues);
  const listed = (kind: Exclude<ModelKind, 'root'>): { path: string; at: FieldPath }[] => {
    const v = root.value[kind] as string | string[];
    const list = Array.isArray(v) ? v : [v];
    return list.map((p, i) => ({ path: posix.join(posix.dirname(rootFilePath), p), at: Array.isArray(v) ? [kind, i] : [kind] }));
  };

  const filesOf = (kind: Exclude<ModelKind, 'root'>): ParsedFile[] =>
    listed(kind).flatMap(({ path, at }) => {
      if (!isInside(baseDir, path)) {
        issues.push({ ...root.source.locate(at), field: fieldName(at), message: `"${path}" is outside the deployment directory ${describeDir(baseDir)}` });
        return [];
      }
      const parsed = parseModelFile(path, kind, opts.readText, issues, () => ({ ...root.source.locate(at), field: fieldName(at) }));
      return parsed ? [parsed] : [];
    });

  const networkFiles = filesOf('network');
  const serviceFiles = filesOf('services');
  const distributionFiles = filesOf('distribution');
  if (issues.length > 0) throw new ModelError(issues);

  const machines = mergeNetwork(networkFiles, baseDir, issues);
  const services = mergeServices(serviceFiles, baseDir, issues);
  const distribution = mergeDistribution(distributionFiles, issues);

  const locate: Models['locate'] = (kind, path) => {
    const files = kind === 'network' ? networkFiles : kind === 'services' ? serviceFiles : distributionFiles;
    const holder = files.find((f) => f.source.has(path)) ?? files.find((f) => f.source.has(path.slice(0, 2))) ?? files[0];
    return holder ? holder.source.locate(path) : { file: rootFilePath, line: 1, column: 1 };
  };

  const models: Models = { name: root.value.name, rootFile: rootFilePath, baseDir, machines, services, distribution, locate };
  if (root.value.snapshotsKept !== undefined) models.snapshotsKept = root.value.snapshotsKept;
  issues.push(...validateModels(models));
  if (issues.length > 0) throw new ModelError(dedupe(issues));
  return models;
}

function parseModelFile(
  path: string,
  kind: ModelKind,
  readText: ReadText,
  issues: ModelIssue[],
  /** Where the root file names this file; a function, as positions are looked up only for errors. */
  namedAt?: () => Omit<ModelIssue, 'message'>,
): ParsedFile | undefined {
  let text: string | Uint8Array | undefined;
  let why = '';
  try {
    text = readText(path);
  } catch (e) {
    // A reader may say why: a path refused as leading outside the deployment directory.
    why = e instanceof Error && e.message ? `: ${e.message}` : '';
    text = undefined;
  }
  if (text === undefined) {
    issues.push(
      namedAt
        ? { ...namedAt(), message: `${kind} file "${path}" cannot be read${why}` }
        : { file: path, line: 1, column: 1, field: '', message: `root file cannot be read${why}` },
    );
    return undefined;
  }
  const { source, issues: yamlIssues } = parseYaml(path, text);
  if (!source) {
    issues.push(...yamlIssues);
    return undefined;
  }
  const schema = kind === 'root' ? rootFile : schemas[kind];
  const result = schema.safeParse(source.value);
  if (!result.success) {
    issues.push(...toModelIssues(source, result.error));
    return undefined;
  }
  return { source, value: nullPrototype(result.data) };
}

function mergeServices(files: ParsedFile[], baseDir: string, issues: ModelIssue[]): Record<string, Service> {
  const out = table<Service>();
  const origin = new Map<string, ParsedFile>();
  for (const f of files) {
    for (const [name, s] of Object.entries<any>(f.value.services)) {
      const first = origin.get(name);
      if (first) {
        issues.push(duplicateIssue(f, ['services', name], first, `service "${name}"`));
        continue;
      }
      origin.set(name, f);
      const artifactDir = s.artifact === undefined ? undefined : posix.join(posix.dirname(f.source.file), s.artifact);
      if (artifactDir !== undefined && !isInside(baseDir, artifactDir)) {
        issues.push({ ...f.source.locate(['services', name, 'artifact']), field: `services.${name}.artifact`, message: `"${s.artifact}" leaves the deployment directory ${describeDir(baseDir)}` });
      }
      const { artifact: _artifact, ...rest } = s;
      out[name] = { ...rest, name, artifactDir, dependsOn: s.dependsOn ?? [], connectsTo: s.connectsTo ?? [] };
    }
  }
  return out;
}

function mergeDistribution(files: ParsedFile[], issues: ModelIssue[]): Record<string, Placement[]> {
  const out = table<Placement[]>();
  const origin = new Map<string, ParsedFile>();
  for (const f of files) {
    for (const [name, p] of Object.entries<any>(f.value.distribution)) {
      const first = origin.get(name);
      if (first) {
        issues.push(duplicateIssue(f, ['distribution', name], first, `distribution of "${name}"`));
        continue;
      }
      origin.set(name, f);
      const list = Array.isArray(p) ? p : [p];
      out[name] = list.map((x: any) => (typeof x === 'string' ? { machine: x } : { machine: x.machine, container: x.container }));
    }
  }
  return out;
}

function duplicateIssue(f: ParsedFile, path: FieldPath, first: ParsedFile, what: string): ModelIssue {
  const a = first.source.locate(path);
  return { ...f.source.locate(path), field: fieldName(path), message: `${what} is also defined at ${a.file}:${a.line}:${a.column}` };
}

function dedupe(issues: ModelIssue[]): ModelIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.file}:${i.line}:${i.column}:${i.field}:${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
