import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hashArtifactSource } from '../artifact/read.ts';
import { resolveManifest } from '../manifest/resolve.ts';
import type { Manifest } from '../manifest/types.ts';
import { loadModels } from '../model/load.ts';
import type { Models } from '../model/types.ts';

export interface Loaded {
  models: Models;
  manifest: Manifest;
}

/** Reads a deployment's models from disk and resolves the desired manifest (hashing artifacts). */
export function loadDeployment(rootFile: string): Loaded {
  const models = loadModels(resolve(rootFile), { readText: readTextOrUndefined });
  return { models, manifest: resolveManifest(models, hashArtifactSource) };
}

/** Validation only: the models, without reading artifacts. */
export function validateDeployment(rootFile: string): Models {
  return loadModels(resolve(rootFile), { readText: readTextOrUndefined });
}

function readTextOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
