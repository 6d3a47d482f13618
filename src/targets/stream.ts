import type { ArtifactEntry } from '../artifact/hash.ts';

/**
 * The runtime's input format: "D 0 MODE PATH\n" creates a directory, "F SIZE MODE PATH\n"
 * is followed by SIZE raw bytes; "E\n" ends one tree, "Z\n" the stream. The runtime reads
 * it with `read` and `head -c` only.
 */
export function encodeTree(entries: readonly ArtifactEntry[]): Buffer[] {
  const chunks: Buffer[] = [];
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) chunks.push(Buffer.from(`D 0 755 ${d}\n`));
  for (const e of entries) {
    chunks.push(Buffer.from(`F ${e.content.byteLength} ${e.mode} ${e.path}\n`), Buffer.from(e.content));
  }
  return chunks;
}

/** Several artifacts for `upload`: "A HASH\n" + tree + "E\n" each, then "Z\n". */
export function encodeUpload(artifacts: readonly { hash: string; entries: readonly ArtifactEntry[] }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const a of artifacts) chunks.push(Buffer.from(`A ${a.hash}\n`), ...encodeTree(a.entries), Buffer.from('E\n'));
  chunks.push(Buffer.from('Z\n'));
  return Buffer.concat(chunks);
}

/** Named small files (an item's spec) as one tree, ended by "Z\n". */
export function encodeFiles(files: Record<string, string>): Buffer {
  const entries = Object.entries(files).map(([path, text]) => ({ path, mode: '644', content: Buffer.from(text) }));
  return Buffer.concat([...encodeTree(entries), Buffer.from('Z\n')]);
}
