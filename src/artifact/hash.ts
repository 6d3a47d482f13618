import { sha256 } from '../manifest/hash.ts';
import type { ArtifactInfo } from '../manifest/types.ts';

/** One file of an artifact tree; `path` is relative, "/"-separated. */
export interface ArtifactEntry {
  path: string;
  mode: string;
  content: Uint8Array;
}

/**
 * Content hash of an artifact tree: sha256 over one line per file, sorted by path:
 * "MODE SHA256 PATH". Scanned trees reduce modes to 755 / 644 (normaliseMode) so checkouts
 * hash alike; declared machine files keep their own mode (e.g. 600).
 */
export function hashArtifact(entries: readonly ArtifactEntry[]): ArtifactInfo {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const lines = sorted.map((e) => `${e.mode} ${sha256(e.content)} ${e.path}\n`).join('');
  return { hash: sha256(lines), size: sorted.reduce((n, e) => n + e.content.byteLength, 0), files: sorted.length };
}

export function normaliseMode(mode: string | number): string {
  const m = typeof mode === 'number' ? mode : parseInt(mode, 8);
  return m & 0o111 ? '755' : '644';
}
