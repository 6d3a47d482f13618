import { StrataError } from '../errors.ts';
import type { ArtifactInfo, ArtifactSource } from '../manifest/types.ts';
import type { Tree } from '../source/tree.ts';
import { hashArtifact, normaliseMode, type ArtifactEntry } from './hash.ts';

export class ArtifactError extends StrataError {}

const SAFE_NAME = /^[^\u0000-\u001f\u007f/]+$/;

/**
 * Reads an artifact's files from a tree (the disk, or a Git commit). Symlinks and special
 * files are refused (an artifact must not reach outside its directory); names must survive
 * the runtime's line-based stream (no control characters, no leading or trailing blanks).
 */
export async function readArtifact(source: ArtifactSource, tree: Tree): Promise<ArtifactEntry[]> {
  if (source.kind === 'inline') return [{ path: checkName(source.name, source.name), mode: source.mode, content: Buffer.from(source.content) }];
  const kind = await tree.kind(source.path);
  if (kind === undefined) throw new ArtifactError('ARTIFACT_MISSING', `artifact ${source.path} does not exist in ${tree.label}`, { path: source.path });
  if (source.kind === 'file') {
    const content = kind === 'file' ? await tree.readFile(source.path) : undefined;
    if (!content) throw new ArtifactError('ARTIFACT_NOT_A_FILE', `${source.path} is not a regular file`, { path: source.path });
    return [{ path: checkName(source.name, source.path), mode: source.mode, content }];
  }
  if (kind !== 'dir') throw new ArtifactError('ARTIFACT_NOT_A_DIRECTORY', `artifact ${source.path} is not a directory`, { path: source.path });
  const out: ArtifactEntry[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of (await tree.list(dir)) ?? []) {
      const abs = `${dir}/${e.name}`;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      checkName(e.name, abs);
      if (e.kind === 'dir') await walk(abs, relPath);
      else if (e.kind === 'file') out.push({ path: relPath, mode: normaliseMode(e.mode), content: (await tree.readFile(abs))! });
      else throw new ArtifactError('ARTIFACT_SPECIAL_FILE', `${abs} is a symlink or special file; artifacts hold regular files only`, { path: abs });
    }
  };
  await walk(source.path, '');
  return out;
}

/** Hashes an artifact read from a tree; the I/O half of manifest resolution. */
export async function hashArtifactSource(source: ArtifactSource, tree: Tree): Promise<ArtifactInfo> {
  return hashArtifact(await readArtifact(source, tree));
}

function checkName(name: string, where: string): string {
  if (!SAFE_NAME.test(name) || name.trim() !== name || name === '.' || name === '..') {
    throw new ArtifactError('ARTIFACT_UNSAFE_NAME', `${where}: file name ${JSON.stringify(name)} has control characters or surrounding blanks`, { path: where });
  }
  return name;
}
