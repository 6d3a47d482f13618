import { StrataError } from '../errors.ts';

/** strata's exit codes; the only place error codes become process exit statuses. */
export const EXIT = {
  ok: 0,
  /** Apply failed (and was rolled back), a machine could not be reached, or an internal error. */
  failed: 1,
  /**
   * Bad input: invalid models, bad arguments, unreadable plan or artifacts, a damaged state
   * file (STATE_CORRUPT), a state directory that does not know the generation the machines run
   * (STATE_UNKNOWN_GENERATION), an adopt that cannot be done safely. Nothing was touched.
   */
  badInput: 2,
  /** The plan is stale: the recorded state moved on since it was made. */
  stalePlan: 3,
  /** A machine is locked by another transition. */
  locked: 4,
} as const;

/** A snapshot file or its sidecar that `restore` will not read (src/state/snapshots.ts). */
const SNAPSHOT_REFUSALS = ['SNAPSHOT_NOT_A_FILE', 'SNAPSHOT_TOO_LARGE', 'SNAPSHOT_CHANGED', 'SNAPSHOT_UNREADABLE', 'SNAPSHOT_SIDECAR_MISSING', 'SNAPSHOT_SIDECAR_INVALID'];

// One code a line, so that adding one is a one-line change.
const BAD_INPUT = new Set([
  'MODEL_INVALID',
  'USAGE',
  'PLAN_INVALID',
  'PLAN_NOT_APPLIABLE',
  'ARTIFACT_MISSING',
  'ARTIFACT_NOT_A_DIRECTORY',
  'ARTIFACT_NOT_A_FILE',
  'ARTIFACT_SPECIAL_FILE',
  'ARTIFACT_UNSAFE_NAME',
  'ARTIFACT_CHANGED',
  'GENERATION_NOT_FOUND',
  'NO_PREVIOUS_GENERATION',
  'ALREADY_CURRENT',
  'NOTHING_DEPLOYED',
  'GIT_URL_INVALID',
  'GIT_REF_NOT_FOUND',
  'GIT_NOT_A_REPOSITORY',
  'SECRET_MISSING',
  'SERVICE_NOT_DEPLOYED',
  'NOT_STATEFUL',
  'SNAPSHOT_NOT_FOUND',
  'SNAPSHOT_CORRUPT',
  'SNAPSHOT_MISMATCH',
  'CONFIRMATION_REQUIRED',
  'NAME_INVALID',
  'ARTIFACT_OUTSIDE_DEPLOYMENT',
  'ARTIFACT_SYMLINK_LOOP',
  'SOURCE_CHANGED',
  'SOURCE_UNREADABLE',
  'CLAIM_CONFLICT',
  'DEPLOYMENT_NAME_INVALID',
  'MACHINE_NOT_FOUND',
  'STATE_CORRUPT',
  'STATE_UNKNOWN_GENERATION',
  'STATE_EXISTS',
  'ADOPT_NOTHING_RECORDED',
  'ADOPT_AMBIGUOUS',
  'ADOPT_INCOMPLETE',
  'SETTING_INVALID',
  ...SNAPSHOT_REFUSALS,
]);

export function exitCodeFor(e: unknown): number {
  if (!(e instanceof StrataError)) return EXIT.failed;
  if (BAD_INPUT.has(e.code)) return EXIT.badInput;
  if (e.code === 'STALE_PLAN') return EXIT.stalePlan;
  if (e.code === 'MACHINE_LOCKED') return EXIT.locked;
  return EXIT.failed;
}
