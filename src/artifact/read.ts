import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StrataError } from '../errors.ts';
import type { ArtifactInfo, ArtifactSource } from '../manifest/types.ts';
import { hashArtifact, normaliseMode, type ArtifactEntry } from './hash.ts';

export class ArtifactError extends StrataError {}

const SAFE_NAME = /^[^\u0000-\u001f\u007f/]+$/;

/**
 * Reads an artifact's files from the controller's disk. Symlinks and special files are
 * refused (an artifact must not reach outside its directory); names must survive the
 * runtime's line-based stream (no control characters, no leading or trailing blanks).
 */
export function readArtifact(source: ArtifactSource): ArtifactEntry[] {
  if (source.kind === 'inline') return [{ path: checkName(source.name, source.name), mode: source.mode, content: Buffer.from(source.content) }];
  if (source.kind === 'file') {
    const st = statOrThrow(source.path);
    if (!st.isFile()) throw new ArtifactError('ARTIFACT_NOT_A_FILE', `${source.path} is not a regular file`, { path: source.path });
    return [{ path: checkName(source.name, source.path), mode: source.mode, content: readFileSync(source.path) }];
  }
  const st = statOrThrow(source.path);
  if (!st.isDirectory()) throw new ArtifactError('ARTIFACT_NOT_A_DIRECTORY', `artifact ${source.path} is not a directory`, { path: source.path });
  const out: ArtifactEntry[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      checkName(name, abs);
      const s = lstatSync(abs);
      if (s.isDirectory()) walk(abs, relPath);
      else if (s.isFile()) out.push({ path: relPath, mode: normaliseMode(s.mode), content: readFileSync(abs) });
      else throw new ArtifactError('ARTIFACT_SPECIAL_FILE', `${abs} is a symlink or special file; artifacts hold regular files only`, { path: abs });
    }
  };
  walk(source.path, '');
  return out;
}

/** Hashes an artifact from disk; the I/O half of manifest resolution. */
export function hashArtifactSource(source: ArtifactSource): ArtifactInfo {
  return hashArtifact(readArtifact(source));
}

function checkName(name: string, where: string): string {
  if (!SAFE_NAME.test(name) || name.trim() !== name || name === '.' || name === '..') {
    throw new ArtifactError('ARTIFACT_UNSAFE_NAME', `${where}: file name ${JSON.stringify(name)} has control characters or surrounding blanks`, { path: where });
  }
  return name;
}

function statOrThrow(path: string) {
  try {
    return lstatSync(path);
  } catch {
    throw new ArtifactError('ARTIFACT_MISSING', `artifact ${path} does not exist`, { path });
  }
}
