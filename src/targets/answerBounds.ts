import { TargetError } from '../errors.ts';
import { MAX_SNAPSHOT_BYTES } from '../state/snapshots.ts';
import { excerpt } from './machineText.ts';

/** Bytes a line answer (`status`, `lock`, …) may have on stdout: a line per item, far below this. */
const MAX_LINE_ANSWER_BYTES = 4 * 1024 ** 2;
/** A generation record is the machine's part of a manifest (its items and their environment); `activate` answers with reasons that end in log tails. */
const MAX_RECORD_BYTES = 16 * 1024 ** 2;

/**
 * The most a snapshot may be: STRATA_MAX_SNAPSHOT_BYTES when set (bytes, a whole number), else
 * (and never more than) MAX_SNAPSHOT_BYTES, the most strata restores.
 */
export function maxSnapshotBytes(env: NodeJS.ProcessEnv, cap = MAX_SNAPSHOT_BYTES): number {
  const set = env.STRATA_MAX_SNAPSHOT_BYTES;
  if (set === undefined || set === '') return cap;
  if (!/^\d{1,16}$/.test(set) || Number(set) < 1) {
    throw new TargetError('SETTING_INVALID', `STRATA_MAX_SNAPSHOT_BYTES=${excerpt(set, 40)} is not a whole number of bytes (at least 1)`, { setting: 'STRATA_MAX_SNAPSHOT_BYTES' });
  }
  return Math.min(Number(set), cap);
}

/** The bounds on what a machine may answer to a runtime verb (RunOptions); `snapshotBytes` is maxSnapshotBytes as the edge read it. */
export function answerBounds(verb: string, snapshotBytes = MAX_SNAPSHOT_BYTES): { verb: string; maxStdoutBytes: number } {
  if (verb === 'snapshot') return { verb, maxStdoutBytes: snapshotBytes };
  if (verb === 'manifest' || verb === 'activate') return { verb, maxStdoutBytes: MAX_RECORD_BYTES };
  return { verb, maxStdoutBytes: MAX_LINE_ANSWER_BYTES };
}
