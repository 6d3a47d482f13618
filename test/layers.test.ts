// The import graph of src/ against the layer table of src/lib/layers.ts (docs/architecture.md).
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { checkLayers, LAYERS, type ImportEdge } from '../src/lib/layers.ts';

const root = path.resolve(import.meta.dirname, '..');
const srcDir = path.join(root, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Static imports, `export … from`, `import type` and dynamic `import()`, as the compiler sees them. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('.'));
}

function resolveImport(from: string, spec: string): string {
  const p = path.resolve(path.dirname(from), spec);
  if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  const asTs = p.replace(/\.js$/, '.ts');
  if (fs.existsSync(asTs)) return asTs;
  if (fs.existsSync(`${p}.ts`)) return `${p}.ts`;
  if (fs.existsSync(path.join(p, 'index.ts'))) return path.join(p, 'index.ts');
  throw new Error(`${path.relative(root, from)}: cannot resolve import '${spec}'`);
}

interface SrcGraph {
  files: string[];
  edges: ImportEdge[];
  /** Imports that leave src/, as "from -> path from the repository root". */
  outside: string[];
}

function srcGraph(): SrcGraph {
  const abs = sourceFiles(srcDir);
  const rel = (p: string) => path.relative(srcDir, p).split(path.sep).join('/');
  const edges: ImportEdge[] = [];
  const outside: string[] = [];
  for (const f of abs) {
    for (const spec of importsOf(f)) {
      const to = resolveImport(f, spec);
      if (!to.startsWith(srcDir + path.sep)) outside.push(`${rel(f)} -> ${path.relative(root, to)}`);
      else edges.push({ from: rel(f), to: rel(to) });
    }
  }
  return { files: abs.map(rel).sort(), edges, outside };
}

const isTest = (f: string) => /\.test\.ts$/.test(f);

/**
 * The files the layer order binds: all of src/ but its tests and the helpers only tests import
 * (those belong in test/support; docs/architecture.md). A test may drive its module through
 * higher layers; nothing that ships may.
 */
function shipped(g: SrcGraph): Set<string> {
  const importers = new Map<string, string[]>();
  for (const e of g.edges) importers.set(e.to, [...(importers.get(e.to) ?? []), e.from]);
  const testOnly = (f: string) => (importers.get(f) ?? []).length > 0 && importers.get(f)!.every(isTest);
  return new Set(g.files.filter((f) => !isTest(f) && !testOnly(f)));
}

describe('layers of src/', () => {
  const graph = srcGraph();
  const ships = shipped(graph);
  const report = checkLayers([...ships], graph.edges.filter((e) => ships.has(e.from)));

  it('reads a plausible import graph', () => {
    expect(ships.size).toBeGreaterThan(100);
    expect(graph.edges).toContainEqual({ from: 'plan/diff.ts', to: 'lib/graph.ts' });
    expect(ships.has('plan/diff.ts') && !ships.has('plan/diff.test.ts')).toBe(true);
  });

  it('places every file of src/ in a declared layer', () => {
    expect(checkLayers(graph.files, []).unplaced, 'files under src/ in no layer of src/lib/layers.ts').toEqual([]);
  });

  it('imports only down the layer order (or within a layer)', () => {
    expect(report.backward, 'imports against the order of src/lib/layers.ts').toEqual([]);
  });

  it('imports nothing from outside src/ in what ships', () => {
    expect(graph.outside.filter((o) => ships.has(o.split(' -> ')[0]!))).toEqual([]);
  });

  it('has no import cycle among files', () => {
    expect(checkLayers(graph.files, graph.edges).cycles, 'import cycles').toEqual([]);
  });

  it('docs/architecture.md lists the same layers in the same order', () => {
    const doc = fs.readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
    const table = /<!-- layers -->\n([\s\S]*?)<!-- \/layers -->/.exec(doc);
    expect(table, 'docs/architecture.md has a <!-- layers --> table').not.toBeNull();
    const rows = table![1]!.split('\n').filter((l) => /^\|\s*\d+/.test(l));
    const documented = rows.map((l) => l.split('|')[2]!.trim().split(/,\s*/).map((n) => n.replace(/`/g, '').replace(/\/$/, '')));
    expect(documented).toEqual(LAYERS.map((r) => [...r]));
  });
});
