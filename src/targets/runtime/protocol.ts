/**
 * The protocol between strata and its target runtime, defined once (docs/runtime.md, "The
 * protocol"): the verbs, the exit codes, the lines the runtime answers with, the files of an
 * item's spec, the stream framing, the layout of the runtime root and the characters a token
 * may hold. The sh side gets these values from shHeader(), which script.ts puts before the
 * runtime's files, so the two cannot drift; the parsers (answers.ts) and the command wrapper
 * (machineRuntime.ts) import them from here. Pure: no I/O.
 */

/** How a verb relates to the deployment's records. */
export interface VerbSpec {
  /**
   * A command of a transition that may still run on the machine after its controller died:
   * a lock taken over waits until none of these runs (the runtime's `quiesce`).
   */
  readonly busy: boolean;
  /** Reads only: the deployment's directory is not created (nor an old layout migrated) for it. */
  readonly view: boolean;
}

/** Changes what the deployment runs: a lock taken over waits until none of these runs. */
const WRITES = { busy: true, view: false } as const;
/** Only reads: no deployment directory is made for it. */
const READS = { busy: false, view: true } as const;
/** The lock and the claims made under it: neither of the above. */
const LOCKING = { busy: false, view: false } as const;

/** Every verb the runtime's main dispatches (to its function verb_NAME, "-" as "_"). */
export const VERBS = {
  lock: LOCKING,
  'lock-upload': WRITES,
  renew: LOCKING,
  unlock: LOCKING,
  upload: WRITES,
  activate: WRITES,
  deactivate: WRITES,
  commit: WRITES,
  uncommit: WRITES,
  manifest: READS,
  status: READS,
  claims: READS,
  claim: LOCKING,
  snapshot: { busy: true, view: true },
  restore: WRITES,
} as const satisfies Record<string, VerbSpec>;

export type Verb = keyof typeof VERBS;

export const VERB_NAMES = Object.keys(VERBS) as Verb[];

/** Exit codes of the runtime and of strata's command wrapper around it. */
export const EXIT = {
  OK: 0,
  /** The verb failed; the reason is on stderr. */
  FAILED: 1,
  /** A malformed command: an unknown verb, a missing or unsafe argument. */
  USAGE: 2,
  /** The deployment's lock is held by someone else (`lock`, `renew`, `unlock`). */
  LOCKED: 75,
  /** The wrapper found no runtime on the machine (strata installs it and repeats the command). */
  NOT_INSTALLED: 113,
  /** The wrapper could not install the runtime it was sent. */
  INSTALL_FAILED: 114,
  /** First contact: the machine lacks commands the runtime needs (stdout: "missing NAME" lines; install.ts). */
  UNSUPPORTED: 115,
  /** The runtime was stopped by a signal (HUP, INT, TERM); its cleanups ran. */
  SIGNALLED: 129,
} as const;

/** The exit codes each verb may end with (besides a shell's own when it could not start). */
export function verbExits(verb: Verb): readonly number[] {
  const lockish = verb === 'lock' || verb === 'lock-upload' || verb === 'renew' || verb === 'unlock';
  return [EXIT.OK, EXIT.FAILED, EXIT.USAGE, EXIT.SIGNALLED, ...(lockish ? [EXIT.LOCKED] : [])];
}

/** Module types an item may be of; each is a file modules/TYPE.sh of the runtime. */
export const MODULE_TYPES = ['process', 'file', 'script', 'directory', 'postgresql-database'] as const;
export type ModuleType = (typeof MODULE_TYPES)[number];

/** The first word of each line the runtime answers with, per verb (answers.ts parses them). */
export const LINE = {
  /** `status`: "generation N|none", "lock OWNER|none", then "item KEY MODULE STATE PID ok|drift REASON". */
  generation: 'generation',
  lock: 'lock',
  item: 'item',
  /** `lock`, `renew`: "held OWNER TOKEN PID TAKEN EXPIRES NOW" (refused), "broke WHY ..." (taken over), "missing HASH". */
  held: 'held',
  broke: 'broke',
  missing: 'missing',
  /** `activate`: "ok KEY" or "failed KEY BYTES" and BYTES of reason. */
  ok: 'ok',
  failed: 'failed',
  /** `claims`, `claim`: "record NAME BYTES" or "pending NAME BYTES", each followed by BYTES of JSON. */
  record: 'record',
  pending: 'pending',
} as const;

/** Files of an item's spec (ROOT/items/KEY/NAME) strata writes; the runtime reads them with getf/field. */
export const SPEC_FILE = {
  module: 'module',
  artifact: 'artifact',
  bind: 'bind',
  env: 'env',
  start: 'start',
  readyPort: 'ready_port',
  readyCommand: 'ready_command',
  readyTimeout: 'ready_timeout',
  database: 'database',
  path: 'path',
  mode: 'mode',
  allowed: 'allowed',
} as const;

/**
 * The stream strata sends (stream.ts writes it, the runtime's unpack reads it): "D 0 MODE PATH"
 * a directory, "F SIZE MODE PATH" and SIZE raw bytes, "T LINES MODE PATH" and LINES lines of
 * text, "E" ends a tree, "Z" the stream; `upload` puts "A HASH" before each artifact's tree.
 */
export const FRAME = {
  dir: 'D',
  file: 'F',
  text: 'T',
  endTree: 'E',
  endStream: 'Z',
  artifact: 'A',
  /** The mode that means "the receiver's default" (no chmod). */
  defaultMode: '644',
} as const;

/** The runtime root (ROOT, default /var/lib/strata) and a deployment's directory in it. */
export const LAYOUT = {
  runtime: 'runtime',
  store: 'store',
  deployments: 'deployments',
  items: 'items',
  state: 'state',
  generations: 'generations',
  lock: 'lock',
  claimsPending: 'claims.pending',
} as const;

/** A key or hash as the runtime accepts it (its check_token): no leading dot, a closed set. */
export const TOKEN = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
/** The characters of a token (check_token), and of a lock argument (lock_arg: owners, tokens, pids). */
export const TOKEN_CHARS = 'A-Za-z0-9._-';
export const LOCK_ARG_CHARS = 'A-Za-z0-9._:@-';
/** An argument of the lock (its lock_arg); "-" stands for an unknown field. */
export const LOCK_ARG = new RegExp(`^[${LOCK_ARG_CHARS}]+$`);

/** The path of the runtime script of content address `hash` under the runtime root. */
export function runtimeFile(root: string, hash: string): string {
  return `${root}/${LAYOUT.runtime}/${hash}.sh`;
}

function shWords(words: readonly string[]): string {
  return `'${words.join(' ')}'`;
}

/**
 * The sh definitions of this protocol that the runtime's files use, as the first lines of the
 * assembled script: the same values, so sh and TypeScript cannot drift.
 */
export function shHeader(): string {
  const verbs = VERB_NAMES;
  const lines = [
    '#!/bin/sh',
    '# shellcheck disable=SC3043,SC2034 # `local`: dash, BusyBox ash and bash have it; these values are used by the parts below',
    '# strata target runtime, assembled by src/targets/runtime/script.ts; the values below come',
    '# from src/targets/runtime/protocol.ts (docs/runtime.md).',
    `EXIT_OK=${EXIT.OK}`,
    `EXIT_FAILED=${EXIT.FAILED}`,
    `EXIT_USAGE=${EXIT.USAGE}`,
    `EXIT_LOCKED=${EXIT.LOCKED}`,
    `EXIT_SIGNALLED=${EXIT.SIGNALLED}`,
    `VERBS=${shWords(verbs)}`,
    `VERBS_BUSY=${shWords(verbs.filter((v) => VERBS[v].busy))}`,
    `VERBS_VIEW=${shWords(verbs.filter((v) => VERBS[v].view))}`,
    `MODULE_TYPES=${shWords(MODULE_TYPES)}`,
    `TOKEN_CHARS='${TOKEN_CHARS}'`,
    `LOCK_ARG_CHARS='${LOCK_ARG_CHARS}'`,
    `FRAME_DEFAULT_MODE=${FRAME.defaultMode}`,
  ];
  return `${lines.join('\n')}\n`;
}
