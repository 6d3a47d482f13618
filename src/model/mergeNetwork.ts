import { posix } from 'node:path';
import type { ModelIssue } from '../errors.ts';
import { isInside } from '../lib/paths.ts';
import { describeDir, type ParsedFile } from './files.ts';
import { own, table } from '../lib/table.ts';
import type { Machine } from './types.ts';
import { fieldName } from './fieldPath.ts';

type Path = (string | number)[];

/**
 * Merges several network files (a logical and a physical one, as NixOps does:
 * docs/design.md#the-models). Maps merge key by key; a field set in two files to different
 * values is a conflict naming both.
 */
export function mergeNetwork(files: ParsedFile[], baseDir: string, issues: ModelIssue[]): Record<string, Machine> {
  const merged = table<any>();
  const origin = new Map<string, ParsedFile>();
  for (const f of files) {
    for (const [name, m] of Object.entries<any>(f.value.machines)) {
      merged[name] = mergeValue(merged[name], m, ['machines', name], f, origin, issues);
    }
  }
  const out = table<Machine>();
  for (const [name, m] of Object.entries<any>(merged)) {
    const definedIn = (path: Path): ParsedFile => origin.get(key(path)) ?? files[0]!;
    const where = (path: Path) => ({ ...definedIn(path).source.locate(path), field: fieldName(path) });
    const resolve = (path: Path, rel: string): string | undefined => {
      const abs = posix.join(posix.dirname(definedIn(path).source.file), rel);
      if (isInside(baseDir, abs)) return abs;
      issues.push({ ...where(path), message: `"${rel}" leaves the deployment directory ${describeDir(baseDir)}` });
      return undefined;
    };
    if (m.address === undefined) {
      issues.push({ ...where(['machines', name]), field: `machines.${name}.address`, message: 'is required (no network file gives this machine an address)' });
    }
    const machineFiles = (m.files ?? []).map((f: any, i: number) => {
      if ((f.content === undefined) === (f.source === undefined)) {
        issues.push({ ...where(['machines', name, 'files', i]), message: 'a machine file needs exactly one of "content" or "source"' });
      }
      const { source, ...rest } = f;
      return source === undefined ? rest : { ...rest, sourceFile: resolve(['machines', name, 'files', i, 'source'], source) };
    });
    const daemons = table(
      Object.entries<any>(m.daemons ?? {}).map(([d, spec]) => {
        const { artifact, ...rest } = spec;
        return [d, artifact === undefined ? rest : { ...rest, artifactDir: resolve(['machines', name, 'daemons', d, 'artifact'], artifact) }] as const;
      }),
    );
    out[name] = { ...m, name, target: m.target ?? 'ssh', address: m.address ?? '', files: machineFiles, daemons };
  }
  return out;
}

function mergeValue(a: unknown, b: unknown, path: Path, file: ParsedFile, origin: Map<string, ParsedFile>, issues: ModelIssue[]): unknown {
  if (a === undefined) {
    record(b, path, file, origin);
    return b;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const out = table<unknown>(Object.entries(a));
    for (const [k, v] of Object.entries(b)) out[k] = mergeValue(own(out, k), v, [...path, k], file, origin, issues);
    return out;
  }
  if (deepEqual(a, b)) return a;
  const first = origin.get(key(path));
  const firstPos = first?.source.locate(path);
  const here = file.source.locate(path);
  issues.push({
    ...here,
    field: fieldName(path),
    message: `conflicts with ${firstPos ? `${firstPos.file}:${firstPos.line}:${firstPos.column}` : 'another network file'} (${JSON.stringify(a)} there, ${JSON.stringify(b)} here)`,
  });
  return a;
}

/** Remembers which file set each field, so later errors and relative paths use the right file. */
function record(v: unknown, path: Path, file: ParsedFile, origin: Map<string, ParsedFile>): void {
  origin.set(key(path), file);
  if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) record(x, [...path, k], file, origin);
  else if (Array.isArray(v)) v.forEach((x, i) => record(x, [...path, i], file, origin));
}

const key = (path: Path) => JSON.stringify(path);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
