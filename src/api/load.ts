import { posix } from 'node:path';
import { mapLimit } from '../apply/mapLimit.ts';
import { hashArtifactSource } from '../artifact/read.ts';
import { artifactSources, resolveManifest } from '../manifest/resolve.ts';
import type { ArtifactInfo, Manifest } from '../manifest/types.ts';
import { loadModels } from '../model/load.ts';
import type { Models } from '../model/types.ts';
import { parseYaml } from '../model/yamlSource.ts';
import { fsTree } from '../source/fsTree.ts';
import type { Tree } from '../source/tree.ts';

export interface Loaded {
  models: Models;
  manifest: Manifest;
}

/**
 * Reads a deployment's models from a tree (default: the disk, with rootFile made absolute)
 * and resolves the desired manifest, hashing every artifact once.
 */
export async function loadDeployment(rootFile: string, tree: Tree = fsTree): Promise<Loaded> {
  const models = await validateDeployment(rootFile, tree);
  const infos = new Map<string, ArtifactInfo>();
  await mapLimit(artifactSources(models), 8, async (s) => {
    infos.set(JSON.stringify(s), await hashArtifactSource(s, tree));
  });
  return { models, manifest: resolveManifest(models, (s) => infos.get(JSON.stringify(s))!) };
}

/** Validation only: the models, without reading artifacts. */
export async function validateDeployment(rootFile: string, tree: Tree = fsTree): Promise<Models> {
  const root = tree === fsTree ? posix.resolve(rootFile) : posix.normalize(rootFile);
  const texts = await readModelTexts(root, tree);
  return loadModels(root, { readText: (p) => texts.get(p) });
}

/**
 * Reads the root file and the model files it names, ahead of the (synchronous, pure) model
 * loader. A root file too broken to name its files is left for the loader to report.
 */
async function readModelTexts(root: string, tree: Tree): Promise<Map<string, Uint8Array>> {
  // Bytes, not text: the loader decodes them strictly, so bad UTF-8 is an error with a position.
  const texts = new Map<string, Uint8Array>();
  const read = async (path: string) => {
    const bytes = await tree.readFile(path);
    if (bytes) texts.set(path, bytes);
  };
  await read(root);
  // The loader's own parser, with its limits: the root file is as untrusted as the others.
  const doc = parseYaml(root, texts.get(root) ?? '').source?.value as Record<string, unknown> | undefined;
  const named = ['network', 'services', 'distribution'].flatMap((k) => [doc?.[k]].flat());
  const dir = posix.dirname(root);
  await Promise.all(named.filter((p): p is string => typeof p === 'string' && !posix.isAbsolute(p)).map((p) => read(posix.join(dir, p))));
  return texts;
}
