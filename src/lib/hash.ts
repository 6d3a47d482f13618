import { createHash } from 'node:crypto';

/** SHA-256 of `data` as lowercase hex: the content hash of manifests, artifacts and snapshots. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
