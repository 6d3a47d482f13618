/**
 * The one table of error codes: for each stable `code` a StrataError carries, the CLI's exit
 * status (docs/cli.md, "Exit codes"), whether the controller gives up on the commit that hit
 * it (docs/controller.md, "Reconcile"), the condition reason it reports, and the HTTP status
 * its API answers with. A code missing here is a bug: src/errors/codes.test.ts fails on any
 * code thrown in src/ that the table does not list, so none silently falls into a default.
 */

/** strata's exit statuses; users script on them, so a number never changes meaning. */
export const EXIT = {
  ok: 0,
  /** Apply failed (and was rolled back), a machine could not be reached, or an internal error. */
  failed: 1,
  /** Bad input: invalid models, bad arguments, unreadable plan or artifacts, damaged state; nothing was touched. */
  badInput: 2,
  /** The plan is stale: the recorded state moved on since it was made. */
  stalePlan: 3,
  /** A machine is locked by another transition. */
  locked: 4,
  /** The deployment's state directory is locked by another strata process on this host. */
  stateLocked: 5,
} as const;

export interface ErrorClass {
  exit: (typeof EXIT)[keyof typeof EXIT];
  /** The same commit fails the same way however often it is retried: the controller stalls on it. */
  terminal: boolean;
  /** The CamelCase reason of the controller's conditions (docs/controller.md). */
  reason: string;
  /** The status the controller's HTTP API answers with when an operation fails with this code. */
  http: number;
}

const row = (exit: ErrorClass['exit'], reason: string, more: { terminal?: boolean; http?: number } = {}): ErrorClass => ({ exit, reason, terminal: more.terminal ?? false, http: more.http ?? 409 });
const bad = (reason = 'ReconcileFailed', more: { terminal?: boolean; http?: number } = {}) => row(EXIT.badInput, reason, more);
const failed = (reason = 'ReconcileFailed', more: { terminal?: boolean; http?: number } = {}) => row(EXIT.failed, reason, more);
const terminalArtifact = bad('ArtifactInvalid', { terminal: true });
const unreachable = failed('MachineUnreachable');
const source = failed('SourceUnavailable');

// One code a line, so that adding one is a one-line change.
const TABLE: Record<string, ErrorClass> = {
  // the models and the deployment's files
  MODEL_INVALID: bad('ModelInvalid', { terminal: true }),
  DEPLOYMENT_NAME_MISMATCH: failed('ModelInvalid', { terminal: true }),
  DEPLOYMENT_NAME_INVALID: bad(),
  NAME_INVALID: bad(),
  SETTING_INVALID: bad(),
  CLAIM_CONFLICT: bad('ClaimConflict'),
  ARTIFACT_MISSING: terminalArtifact,
  ARTIFACT_NOT_A_DIRECTORY: terminalArtifact,
  ARTIFACT_NOT_A_FILE: terminalArtifact,
  ARTIFACT_SPECIAL_FILE: terminalArtifact,
  ARTIFACT_UNSAFE_NAME: terminalArtifact,
  ARTIFACT_OUTSIDE_DEPLOYMENT: terminalArtifact,
  ARTIFACT_SYMLINK_LOOP: terminalArtifact,
  ARTIFACT_CHANGED: bad('ArtifactInvalid'),
  ARTIFACT_UNKNOWN: failed('ArtifactInvalid'),
  SOURCE_CHANGED: bad(),
  SOURCE_UNREADABLE: bad(),
  // the command line and the plan
  USAGE: bad('ReconcileFailed', { http: 400 }),
  CONFIRMATION_REQUIRED: bad(),
  PLAN_INVALID: bad(),
  PLAN_NOT_APPLIABLE: bad(),
  STALE_PLAN: row(EXIT.stalePlan, 'StatePending'),
  SECRET_MISSING: bad('SecretMissing'),
  // the recorded state
  STATE_CORRUPT: bad('StateCorrupt'),
  STATE_UNKNOWN_GENERATION: bad('StateUnknown'),
  STATE_EXISTS: bad(),
  STATE_LOCKED: row(EXIT.stateLocked, 'StateLocked'),
  JOURNAL_INVALID: failed(),
  GENERATION_NOT_FOUND: bad(),
  GENERATION_REUSED: failed(),
  NO_PREVIOUS_GENERATION: bad(),
  ALREADY_CURRENT: bad(),
  NOTHING_DEPLOYED: bad(),
  MACHINE_NOT_FOUND: bad('ReconcileFailed', { http: 400 }),
  SERVICE_NOT_DEPLOYED: bad(),
  NOT_STATEFUL: bad(),
  ADOPT_NOTHING_RECORDED: bad(),
  ADOPT_AMBIGUOUS: bad(),
  ADOPT_INCOMPLETE: bad(),
  ADOPT_UNREACHABLE: failed(),
  // snapshots (src/state/snapshots.ts)
  SNAPSHOT_NOT_FOUND: bad(),
  SNAPSHOT_CORRUPT: bad(),
  SNAPSHOT_MISMATCH: bad(),
  SNAPSHOT_NOT_A_FILE: bad(),
  SNAPSHOT_TOO_LARGE: bad(),
  SNAPSHOT_CHANGED: bad(),
  SNAPSHOT_UNREADABLE: bad(),
  SNAPSHOT_SIDECAR_MISSING: bad(),
  SNAPSHOT_SIDECAR_INVALID: bad(),
  SNAPSHOT_FAILED: failed(),
  SNAPSHOT_MISSING: failed(),
  RESTORE_FAILED: failed(),
  // transitions on the machines
  STEP_FAILED: failed('ApplyFailed'),
  APPLY_FAILED: failed('ApplyFailed'),
  RECOVERY_FAILED: failed('RecoveryFailed'),
  TRANSITION_PENDING: failed(),
  MACHINE_LOCKED: row(EXIT.locked, 'MachineLocked'),
  LOCK_LOST: failed('MachineLocked'),
  CREDENTIAL_NOT_ALLOWED: failed('CredentialRefused'),
  LOCAL_MACHINE_NOT_ALLOWED: failed('CredentialRefused'),
  // reaching a machine (src/targets)
  CONNECT_FAILED: unreachable,
  CONNECT_TIMEOUT: unreachable,
  HOST_KEY_MISMATCH: unreachable,
  HOST_KEY_UNKNOWN: unreachable,
  AUTH_FAILED: unreachable,
  COMMAND_TIMEOUT: unreachable,
  CONNECTION_LOST: unreachable,
  EXEC_FAILED: unreachable,
  COMMAND_FAILED_TO_START: failed(),
  NO_IDENTITY: failed(),
  IDENTITY_UNREADABLE: failed(),
  KNOWN_HOSTS_UNREADABLE: failed(),
  RUNTIME_FAILED: failed(),
  RUNTIME_INSTALL_FAILED: failed(),
  TARGET_UNSUPPORTED: failed('TargetUnsupported'),
  MACHINE_ANSWER_TOO_LARGE: failed('MachineAnswerInvalid'),
  MACHINE_ANSWER_INVALID: failed('MachineAnswerInvalid'),
  ANSWER_NOT_STORED: failed(),
  // Git (src/git/errors.ts)
  GIT_URL_INVALID: bad('SourceUnavailable'),
  GIT_REF_NOT_FOUND: bad('SourceUnavailable'),
  GIT_NOT_A_REPOSITORY: bad('SourceUnavailable'),
  GIT_FETCH_FAILED: source,
  GIT_AUTH_FAILED: source,
  GIT_HOST_KEY_MISMATCH: source,
  GIT_HOST_KEY_UNKNOWN: source,
  GIT_OBJECT_MISSING: source,
  // the controller and its API
  DEPLOYMENT_NOT_FOUND: failed('ReconcileFailed', { http: 404 }),
  ROLLBACK_PENDING: failed(),
  ABANDON_PENDING: failed(),
  CONTROLLER_UNREACHABLE: failed(),
  CONTROLLER_ERROR: failed(),
  BAD_REQUEST: failed('ReconcileFailed', { http: 400 }),
  UNAUTHORIZED: failed('ReconcileFailed', { http: 401 }),
  NOT_FOUND: failed('ReconcileFailed', { http: 404 }),
  METHOD_NOT_ALLOWED: failed('ReconcileFailed', { http: 405 }),
  REQUEST_TIMEOUT: failed('ReconcileFailed', { http: 408 }),
  BODY_TOO_LARGE: failed('ReconcileFailed', { http: 413 }),
  HEADERS_TOO_LARGE: failed('ReconcileFailed', { http: 431 }),
  INTERNAL: failed(),
};

/** What any other failure is: not a StrataError (a bug), or a code a remote controller sent that this build does not know. */
const UNKNOWN: ErrorClass = failed();

/** Test hosts (src/testnet): every TESTNET_* code fails the command with exit 1. */
const TESTNET = failed();

/** How a code is reported: by the CLI, the controller's conditions and its API. */
export function classOf(code: string): ErrorClass {
  if (Object.hasOwn(TABLE, code)) return TABLE[code]!;
  if (code.startsWith('TESTNET_')) return TESTNET;
  return UNKNOWN;
}

/** Whether the table lists a code (codes.test.ts checks every code src/ throws). */
export function isKnownCode(code: string): boolean {
  return classOf(code) !== UNKNOWN;
}

export const knownCodes = (): string[] => Object.keys(TABLE);
