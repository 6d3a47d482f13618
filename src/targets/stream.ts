import type { ArtifactEntry } from '../artifact/hash.ts';
import { FRAME } from './runtime/protocol.ts';

/**
 * The runtime's input format: "D 0 MODE PATH\n" creates a directory, "F SIZE MODE PATH\n"
 * is followed by SIZE raw bytes, "T LINES MODE PATH\n" by LINES lines of text; "E\n" ends one
 * tree, "Z\n" the stream (the protocol's FRAME). The runtime reads it with `read` and `head -c` only.
 */
export function encodeTree(entries: readonly ArtifactEntry[]): Buffer[] {
  const chunks: Buffer[] = [];
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) chunks.push(Buffer.from(`${FRAME.dir} 0 755 ${d}\n`));
  for (const e of entries) {
    chunks.push(Buffer.from(`${FRAME.file} ${e.content.byteLength} ${e.mode} ${e.path}\n`), Buffer.from(e.content));
  }
  return chunks;
}

/** Several artifacts for `upload`: "A HASH\n" + tree + "E\n" each, then "Z\n". */
export function encodeUpload(artifacts: readonly { hash: string; entries: readonly ArtifactEntry[] }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const a of artifacts) chunks.push(Buffer.from(`${FRAME.artifact} ${a.hash}\n`), ...encodeTree(a.entries), Buffer.from(`${FRAME.endTree}\n`));
  chunks.push(Buffer.from(`${FRAME.endStream}\n`));
  return Buffer.concat(chunks);
}

/**
 * Named small text files (an item's spec) as one tree, ended by "E\n": "T LINES 644 NAME\n"
 * and the lines, which the runtime reads without starting a process (a text without a final
 * newline gets one). Text holding a NUL byte goes as raw bytes ("F").
 */
export function encodeSpec(files: Record<string, string>): Buffer {
  const chunks: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    if (text.includes('\0')) {
      chunks.push(...encodeTree([{ path: name, mode: FRAME.defaultMode, content: Buffer.from(text) }]));
      continue;
    }
    const body = text === '' || text.endsWith('\n') ? text : `${text}\n`;
    const lines = body.split('\n').length - 1;
    chunks.push(Buffer.from(`${FRAME.text} ${lines} ${FRAME.defaultMode} ${name}\n${body}`));
  }
  chunks.push(Buffer.from(`${FRAME.endTree}\n`));
  return Buffer.concat(chunks);
}

/** Item specs for one `activate KEY...`: each one's tree in the order of the keys, then "Z\n". */
export function encodeActivation(specs: readonly Buffer[]): Buffer {
  return Buffer.concat([...specs, Buffer.from(`${FRAME.endStream}\n`)]);
}
