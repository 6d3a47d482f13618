import { expect } from 'vitest';
import { ModelError, type ModelIssue } from '../../src/errors.ts';
import { loadModels } from '../../src/model/load.ts';
import type { Models } from '../../src/model/types.ts';

/** Model files for the loadModels tests (load*.test.ts), kept in memory by path. */
export type Files = Record<string, string>;

export const ROOT = '/repo/strata.yaml';
export const ROOT_TEXT = ['name: demo', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
export const NETWORK = ['machines:', '  m1: { address: 10.0.0.1 }', '  m2: { address: 10.0.0.2 }', ''].join('\n');
export const ONE_SERVICE = ['services:', '  web:', '    type: process', '    start: node web.js', ''].join('\n');
export const ON_M1 = ['distribution:', '  web: m1', ''].join('\n');

/** A deployment whose files are all valid, with some of them replaced. */
export function deployment(over: Partial<Record<'root' | 'network' | 'services' | 'distribution', string>> & { extra?: Files } = {}): Files {
  return {
    [ROOT]: over.root ?? ROOT_TEXT,
    '/repo/network.yaml': over.network ?? NETWORK,
    '/repo/services.yaml': over.services ?? ONE_SERVICE,
    '/repo/distribution.yaml': over.distribution ?? ON_M1,
    ...over.extra,
  };
}

export const load = (files: Files, root = ROOT): Models => loadModels(root, { readText: (p) => files[p] });

/** The issues loadModels throws; fails the test if it does not throw a ModelError. */
export function issuesOf(files: Files, root = ROOT): ModelIssue[] {
  try {
    load(files, root);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    const issues = (e as ModelError).issues;
    expect(issues.length).toBeGreaterThan(0);
    return issues;
  }
  throw new Error('expected the models to be rejected');
}

/** 1-based line and column of the first occurrence of `needle` in `text` (after `from`). */
export function pos(text: string, needle: string, from?: string): { line: number; column: number } {
  const start = from === undefined ? 0 : text.indexOf(from);
  expect(start, `fixture lacks ${JSON.stringify(from)}`).toBeGreaterThanOrEqual(0);
  const offset = text.indexOf(needle, start);
  expect(offset, `fixture lacks ${JSON.stringify(needle)}`).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

export function only(issues: ModelIssue[]): ModelIssue {
  expect(issues, JSON.stringify(issues, null, 2)).toHaveLength(1);
  return issues[0]!;
}
