import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadDeployment } from '../../src/api/load.ts';
import { ModelError, type ModelIssue } from '../../src/errors.ts';
import { GitTree } from '../../src/git/gitTree.ts';
import { fsTree } from '../../src/tree/fsTree.ts';
import type { Tree } from '../../src/tree/tree.ts';
import { WorkRepo } from './gitServer.ts';

// Everything a model names is read through its real path, inside the deployment directory
// (the root file's), from real files and symlinks on disk and from a commit made with real git.

/** The sandbox directory of the test file, and in it what an attacker's symlinks point at. */
export let base: string;
export let outside: string;
/** Sockets a test made, closed at the end. */
export const sockets: Server[] = [];

/** Makes the sandbox before the file's tests and removes it after them; call once per test file. */
export function useSandbox(): void {
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'strata-confine-'));
    // What an attacker's symlinks point at: a home directory with a private key, a model.
    outside = join(base, 'outside');
    mkdirSync(join(outside, '.ssh'), { recursive: true });
    writeFileSync(join(outside, '.ssh', 'id_ed25519'), 'PRIVATE KEY of the controller host\n');
    writeFileSync(join(outside, 'network.yaml'), 'machines:\n  m1: { address: 10.9.9.9 }\n');
    writeFileSync(join(outside, 'secret.txt'), 'secret\n');
  });

  afterAll(() => {
    for (const s of sockets) s.close();
    rmSync(base, { recursive: true, force: true });
  });
}

export const ROOT = ['name: demo', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
export const NETWORK = 'machines:\n  m1: { address: 10.0.0.1 }\n';
export const DISTRIBUTION = 'distribution:\n  api: m1\n';
export const servicesNaming = (artifact: string) => `services:\n  api:\n    type: process\n    artifact: ${JSON.stringify(artifact)}\n    start: ./run\n`;
/** Where `artifact:` sits in servicesNaming's text: line 4, column 5. */
export const ARTIFACT_AT = { line: 4, column: 5, field: 'services.api.artifact' };

/** A deployment directory: valid models, an artifact `app`, and the extra entries given. */
export function makeDeployment(name: string, extra: (dir: string) => void = () => {}, files: Record<string, string> = {}): string {
  const dir = join(base, name);
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'run'), '#!/bin/sh\n');
  const all = { 'strata.yaml': ROOT, 'network.yaml': NETWORK, 'services.yaml': servicesNaming('app'), 'distribution.yaml': DISTRIBUTION, ...files };
  for (const [p, text] of Object.entries(all)) writeFileSync(join(dir, p), text);
  extra(dir);
  return dir;
}

/** The same directory committed with real git, read as the controller reads it. */
export function gitTreeOf(dir: string): GitTree {
  const repo = new WorkRepo(dir);
  repo.git('-c', 'init.defaultBranch=main', 'init', '--quiet');
  const commit = repo.commit('models');
  return new GitTree({ gitdir: join(dir, '.git'), commit, label: `repo@${commit.slice(0, 7)}` });
}

export async function issuesOf(root: string, tree: Tree = fsTree): Promise<ModelIssue[]> {
  try {
    await loadDeployment(root, tree);
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    return e.issues;
  }
  throw new Error('expected the deployment to be refused');
}

/** Loads the deployment from disk and from its Git commit; both must refuse with the same issue. */
export async function refusedBoth(dir: string, expected: { file?: string; line: number; column: number; field: string; message: RegExp }): Promise<void> {
  const { message, ...where } = expected;
  const disk = await issuesOf(join(dir, 'strata.yaml'));
  expect(disk, JSON.stringify(disk)).toHaveLength(1);
  expect(disk[0]).toMatchObject({ ...where, file: join(dir, where.file ?? 'services.yaml') });
  expect(disk[0]!.message).toMatch(message);
  const git = await issuesOf('strata.yaml', gitTreeOf(dir));
  expect(git, JSON.stringify(git)).toHaveLength(1);
  expect(git[0]).toMatchObject({ ...where, file: where.file ?? 'services.yaml' });
  expect(git[0]!.message).toMatch(message);
}
