import { posix } from 'node:path';
import { ApplyError } from '../errors.ts';
import { hashArtifact } from '../artifact/hash.ts';
import { readArtifact } from '../artifact/read.ts';
import type { ArtifactRef, Manifest } from '../manifest/types.ts';
import { own } from '../lib/table.ts';
import type { Plan } from '../plan/types.ts';
import { DeploymentDir } from '../tree/realPath.ts';
import type { Tree } from '../tree/tree.ts';
import type { UploadArtifact } from '../targets/runtimeApi.ts';

/** The artifacts a machine's store must hold for the plan: its planned uploads and whatever its activations run. */
export function neededArtifacts(plan: Plan, machine: string): string[] {
  const out = new Set(own(plan.uploads, machine)?.map((u) => u.hash) ?? []);
  for (const s of plan.steps) if (s.machine === machine && s.action === 'activate' && s.item.artifact) out.add(s.item.artifact);
  return [...out].sort();
}

export function readArtifacts(desired: Manifest, hashes: readonly string[], tree: Tree): Promise<UploadArtifact[]> {
  return Promise.all(hashes.map(async (hash) => ({ hash, entries: await artifactEntries(desired, hash, tree) })));
}

export function bytesOf(artifacts: readonly UploadArtifact[]): number {
  return artifacts.reduce((n, a) => n + a.entries.reduce((s, e) => s + e.content.byteLength, 0), 0);
}

/** An artifact's files, checked against the hash the plan was made with. */
async function artifactEntries(desired: Manifest, hash: string, tree: Tree) {
  const ref = own(desired.artifacts, hash);
  if (!ref) throw new ApplyError('ARTIFACT_UNKNOWN', `artifact ${hash} is not in the plan's manifest and not on the machine`);
  const entries = await readArtifact(ref, tree, new DeploymentDir(tree, boundOf(ref)));
  const actual = hashArtifact(entries).hash;
  if (actual !== hash) {
    const where = ref.kind === 'inline' ? ref.name : ref.path;
    throw new ApplyError('ARTIFACT_CHANGED', `artifact ${where} changed since the plan was made (hash ${actual.slice(0, 12)}, planned ${hash.slice(0, 12)}); run strata plan again`, { hash, actual });
  }
  return entries;
}

/** The directory an artifact is read inside: its deployment directory, else (older records) its own. */
function boundOf(ref: ArtifactRef): string {
  if (ref.deploymentDir !== undefined) return ref.deploymentDir;
  return ref.kind === 'file' ? posix.dirname(ref.path) : ref.kind === 'dir' ? ref.path : '.';
}
