import { posix } from 'node:path';
import { StrataError } from '../errors.ts';
import type { ArtifactInfo, ArtifactSource } from '../manifest/types.ts';
import { DeploymentDir, isGitDir, PathRefusedError, type PathRefusal } from '../tree/realPath.ts';
import type { Tree, TreeEntryKind } from '../tree/tree.ts';
import { TreeChangedError } from '../tree/tree.ts';
import { hashArtifact, keptMode, type ArtifactEntry } from './hash.ts';

export class ArtifactError extends StrataError {}

const SAFE_NAME = /^[^\u0000-\u001f\u007f/]+$/;

const REFUSAL_CODE: Record<PathRefusal, string> = {
  outside: 'ARTIFACT_OUTSIDE_DEPLOYMENT',
  missing: 'ARTIFACT_MISSING',
  'not-a-directory': 'ARTIFACT_NOT_A_DIRECTORY',
  loop: 'ARTIFACT_SYMLINK_LOOP',
};

/**
 * Reads an artifact's files from a tree (the disk, or a Git commit), confined to `dir`, the
 * deployment directory: the artifact's own path may pass through symlinks whose destinations
 * stay inside it (src/tree/realPath.ts), but inside an artifact directory a symlink is
 * refused, wherever it points, as are FIFOs, sockets, devices and `.git`. Names must survive the
 * runtime's line-based stream (no control characters, no leading or trailing blanks).
 */
export async function readArtifact(source: ArtifactSource, tree: Tree, dir: DeploymentDir): Promise<ArtifactEntry[]> {
  if (source.kind === 'inline') return [{ path: checkName(source.name, source.name), mode: source.mode, content: Buffer.from(source.content) }];
  const shown = (rel = '') => {
    const named = tree.rootedAt === 'filesystem' ? posix.relative(posix.resolve(dir.dir), posix.resolve(source.path)) || '.' : source.path;
    return rel ? `${named}/${rel}` : named;
  };
  let real: { path: string; kind: TreeEntryKind };
  try {
    real = await dir.resolve(source.path);
  } catch (e) {
    if (e instanceof PathRefusedError) throw new ArtifactError(REFUSAL_CODE[e.reason], `artifact ${e.message}`, { path: source.path });
    throw e;
  }
  if (source.kind === 'file') {
    if (real.kind !== 'file') throw new ArtifactError('ARTIFACT_NOT_A_FILE', `${shown()} is ${describeKind(real.kind)}, not a regular file`, { path: source.path });
    const content = await tree.readFile(real.path);
    if (!content) throw new TreeChangedError(real.path, tree.label);
    return [{ path: checkName(source.name, source.path), mode: source.mode, content }];
  }
  if (real.kind !== 'dir') throw new ArtifactError('ARTIFACT_NOT_A_DIRECTORY', `artifact ${shown()} is ${describeKind(real.kind)}, not a directory`, { path: source.path });
  const out: ArtifactEntry[] = [];
  const walk = async (realDir: string, rel: string): Promise<void> => {
    const entries = await tree.list(realDir);
    if (!entries) throw new TreeChangedError(realDir, tree.label);
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      checkName(e.name, shown(relPath));
      if (isGitDir(e.name)) {
        throw new ArtifactError('ARTIFACT_SPECIAL_FILE', `${shown(relPath)} is a checkout's own metadata (it may hold credentials); artifacts never ship .git`, { path: shown(relPath) });
      }
      const at = `${realDir}/${e.name}`;
      if (e.kind === 'dir') await walk(at, relPath);
      else if (e.kind === 'file') {
        const content = await tree.readFile(at);
        if (!content) throw new TreeChangedError(at, tree.label);
        out.push({ path: relPath, mode: keptMode(e.mode), content });
      } else {
        throw new ArtifactError('ARTIFACT_SPECIAL_FILE', `${shown(relPath)} is ${describeKind(e.kind)}; artifacts hold regular files and directories only (a symlink inside an artifact is never followed)`, { path: shown(relPath) });
      }
    }
  };
  await walk(real.path, '');
  return out;
}

/** Hashes an artifact read from a tree; the I/O half of manifest resolution. */
export async function hashArtifactSource(source: ArtifactSource, tree: Tree, dir: DeploymentDir): Promise<ArtifactInfo> {
  return hashArtifact(await readArtifact(source, tree, dir));
}

function describeKind(kind: TreeEntryKind): string {
  return kind === 'symlink' ? 'a symlink' : kind === 'dir' ? 'a directory' : kind === 'file' ? 'a regular file' : 'a special file (a FIFO, socket or device)';
}

function checkName(name: string, where: string): string {
  if (!SAFE_NAME.test(name) || name.trim() !== name || name === '.' || name === '..') {
    throw new ArtifactError('ARTIFACT_UNSAFE_NAME', `${JSON.stringify(where)}: file name ${JSON.stringify(name)} has control characters or surrounding blanks`, { path: where });
  }
  return name;
}
