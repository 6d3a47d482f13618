import { posix } from 'node:path';
import { mapLimit } from '../lib/mapLimit.ts';
import { hashArtifactSource } from '../artifact/read.ts';
import { ModelError, StrataError, type ModelIssue } from '../errors.ts';
import { artifactSources, resolveManifest } from '../manifest/resolve.ts';
import type { ArtifactInfo, Manifest } from '../manifest/types.ts';
import { loadModels } from '../model/load.ts';
import { artifactIssues } from '../manifest/artifactFields.ts';
import type { Models } from '../model/types.ts';
import { parseYaml } from '../model/yamlSource.ts';
import { fsTree } from '../tree/fsTree.ts';
import { DeploymentDir, PathRefusedError } from '../tree/realPath.ts';
import { isTreeRefusal, type Tree } from '../tree/tree.ts';

export interface Loaded {
  models: Models;
  manifest: Manifest;
}

/**
 * Reads a deployment's models from a tree (default: the disk, with rootFile made absolute)
 * and resolves the desired manifest, hashing every artifact once. An artifact that cannot be
 * read (missing, a symlink or special file inside it, a path leading outside the deployment
 * directory) is a ModelError at the field that names it; nothing has touched a machine.
 */
export async function loadDeployment(rootFile: string, tree: Tree = fsTree): Promise<Loaded> {
  const models = await validateDeployment(rootFile, tree);
  const dir = new DeploymentDir(tree, models.baseDir);
  const infos = new Map<string, ArtifactInfo>();
  const issues: ModelIssue[] = [];
  await mapLimit(artifactSources(models), 8, async (s) => {
    try {
      infos.set(JSON.stringify(s), await hashArtifactSource(s, tree, dir));
    } catch (e) {
      if (!isArtifactRefusal(e)) throw e;
      issues.push(...artifactIssues(models, s, e.message));
    }
  });
  if (issues.length > 0) throw new ModelError(issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column));
  return { models, manifest: resolveManifest(models, (s) => infos.get(JSON.stringify(s))!) };
}

function isArtifactRefusal(e: unknown): e is StrataError {
  return isTreeRefusal(e) || (e instanceof StrataError && e.code.startsWith('ARTIFACT_'));
}

/** Validation only: the models, without reading artifacts. */
export async function validateDeployment(rootFile: string, tree: Tree = fsTree): Promise<Models> {
  const root = tree.rootedAt === 'filesystem' ? posix.resolve(rootFile) : posix.normalize(rootFile);
  const { texts, refused } = await readModelTexts(root, tree);
  return loadModels(root, {
    readText: (p) => {
      const why = refused.get(p);
      if (why !== undefined) throw new Error(why);
      return texts.get(p);
    },
  });
}

/**
 * Reads the root file and the model files it names, ahead of the (synchronous, pure) model
 * loader, each through its real path inside the deployment directory (the root file's): a
 * file that is missing or leads outside it is refused, and the loader reports why at the
 * root file's field. A root file too broken to name its files is left for the loader to report.
 */
async function readModelTexts(root: string, tree: Tree): Promise<{ texts: Map<string, Uint8Array>; refused: Map<string, string> }> {
  // Bytes, not text: the loader decodes them strictly, so bad UTF-8 is an error with a position.
  const texts = new Map<string, Uint8Array>();
  const refused = new Map<string, string>();
  const dir = new DeploymentDir(tree, posix.dirname(root));
  const read = async (path: string) => {
    try {
      const real = await dir.resolve(path);
      const bytes = real.kind === 'file' ? await tree.readFile(real.path) : undefined;
      if (bytes) texts.set(path, bytes);
      else refused.set(path, `it is ${real.kind === 'dir' ? 'a directory' : 'not a regular file'}`);
    } catch (e) {
      if (!(e instanceof PathRefusedError) && !isTreeRefusal(e)) throw e;
      refused.set(path, e.message);
    }
  };
  await read(root);
  // The loader's own parser, with its limits: the root file is as untrusted as the others. A
  // root file too broken to name its files is left for the loader to report.
  const doc = parseYaml(root, texts.get(root) ?? '').source?.value as Record<string, unknown> | undefined;
  const named = ['network', 'services', 'distribution'].flatMap((k) => [doc?.[k]].flat());
  const base = posix.dirname(root);
  await Promise.all(named.filter((p): p is string => typeof p === 'string' && !posix.isAbsolute(p)).map((p) => read(posix.join(base, p))));
  return { texts, refused };
}
