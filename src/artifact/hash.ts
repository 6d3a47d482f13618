import { sha256 } from '../lib/hash.ts';
import type { ArtifactInfo } from '../manifest/types.ts';

/** One file of an artifact tree; `path` is relative, "/"-separated. */
export interface ArtifactEntry {
  path: string;
  mode: string;
  content: Uint8Array;
}

/**
 * Content hash of an artifact tree: sha256 over one line per file, sorted by path:
 * "MODE SHA256 PATH". Scanned trees keep each file's mode (keptMode: 600 stays 600); declared
 * machine files have their own mode (e.g. 600).
 */
export function hashArtifact(entries: readonly ArtifactEntry[]): ArtifactInfo {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const lines = sorted.map((e) => `${e.mode} ${sha256(e.content)} ${e.path}\n`).join('');
  return { hash: sha256(lines), size: sorted.reduce((n, e) => n + e.content.byteLength, 0), files: sorted.length };
}

/**
 * The mode a scanned file is shipped with: its permission bits as they are in the tree, less
 * write for group and others and less setuid, setgid and sticky (a checkout made with umask
 * 002 ships 644 and 755, as Git records them). 0600 stays 0600, 0640 stays 0640.
 */
export function keptMode(mode: string | number): string {
  const m = typeof mode === 'number' ? mode : parseInt(mode, 8);
  return (m & 0o755).toString(8).padStart(3, '0');
}
