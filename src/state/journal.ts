import { z } from 'zod';
import { PLAN_FORMAT, PLAN_KINDS, planFromDocument } from '../plan/format.ts';
import type { Plan } from '../plan/types.ts';
import type { GenerationRecord } from './records.ts';
import { corrupt, parseStateJson } from './readState.ts';
import { generationRecordSchema, manifestSchema } from './schemas.ts';

/**
 * The write-ahead journal of a transition (`deployments/NAME/journal.jsonl`, docs/reliability.md,
 * "The journal"): one JSON entry a line, every entry fsync'd before the effect it announces.
 * This module is the only one that knows the entries' shapes: apply and recovery write them
 * through the constructors below and read them back through `parseJournalLine`, which refuses an
 * entry of an unknown version or kind (STATE_CORRUPT naming the file and line).
 *
 * - `begin`: the whole plan, the lock owner and token, the pid; before any machine is touched
 * - `lock-broken`: a stale lock of another owner was broken on a machine; `lock-lost`: ours was taken over
 * - `step` start / done: around each step
 * - `undo-start`, `undo` (per undone step), `uncommit`: an undo of the transition under way
 * - `commit`: before the machines record the new generation
 * - `committed` / `rolled-back`: the outcome; `undo-incomplete`: some undo failed (not final)
 * - `recovery`: a recovery took the transition over
 * - `abandon`: a machine was declared gone for good (src/api/abandon.ts): its steps are lost,
 *   nothing more is tried on it
 */

/** The journal's format version, written in every entry as `v`. */
export const JOURNAL_VERSION = 1;

interface Entry<K extends string> {
  v: typeof JOURNAL_VERSION;
  kind: K;
  at: string;
}

/** What the state store records with the generation, besides the plan's manifest. */
export type RecordedWith = Pick<GenerationRecord, 'source' | 'commit' | 'rolledBackTo'>;

export interface BeginEntry extends Entry<'begin'> {
  generation: number;
  basis: Plan['basis'];
  /** The controller identity that holds the machine locks (HOST:ID). */
  owner: string;
  /** This transition's lock token: a lock with it is this transition's. */
  token: string;
  pid: number;
  host: string;
  leaseMs: number;
  plan: Plan;
  record: RecordedWith;
}

/** A lock holder as the journal keeps it (src/targets/runtimeApi.ts LockHolder, loosely). */
export type JournaledHolder = Record<string, unknown>;

export type LockBrokenEntry = Entry<'lock-broken'> & { machine: string; holder: JournaledHolder; why: string };
export type LockLostEntry = Entry<'lock-lost'> & { machine: string; error: string };
export type StepEntry = Entry<'step'> & { status: 'start' | 'done'; step: string };
export type UndoStartEntry = Entry<'undo-start'> & { steps: string[] };
/** `lost`: on an abandoned machine, not tried; `skipped`: nothing to undo (a snapshot or restore). */
export type UndoEntry = Entry<'undo'> & { step: string; lost?: true; skipped?: true };
export type UncommitEntry = Entry<'uncommit'> & { generation: number };
export type CommitEntry = Entry<'commit'> & { generation: number; machines: string[] };
export type OutcomeEntry = Entry<'committed' | 'rolled-back'> & { generation: number; by?: 'recovery' };
export type UndoIncompleteEntry = Entry<'undo-incomplete'> & { errors: string[] };
export type RecoveryEntry = Entry<'recovery'> & { pid: number };
export type AbandonEntry = Entry<'abandon'> & { machine: string; by: string; reason: string };

export type JournalEntry =
  | BeginEntry
  | LockBrokenEntry
  | LockLostEntry
  | StepEntry
  | UndoStartEntry
  | UndoEntry
  | UncommitEntry
  | CommitEntry
  | OutcomeEntry
  | UndoIncompleteEntry
  | RecoveryEntry
  | AbandonEntry;

const head = <K extends string>(kind: K): Entry<K> => ({ v: JOURNAL_VERSION, kind, at: new Date().toISOString() });

/** The typed constructors: the only way an entry is made. */
export const entry = {
  begin: (b: Omit<BeginEntry, keyof Entry<'begin'>>): BeginEntry => ({ ...head('begin'), ...b }),
  lockBroken: (machine: string, holder: object, why: string): LockBrokenEntry => ({ ...head('lock-broken'), machine, holder: { ...holder }, why }),
  lockLost: (machine: string, error: string): LockLostEntry => ({ ...head('lock-lost'), machine, error }),
  step: (status: 'start' | 'done', step: string): StepEntry => ({ ...head('step'), status, step }),
  undoStart: (steps: string[]): UndoStartEntry => ({ ...head('undo-start'), steps }),
  undo: (step: string, how?: 'lost' | 'skipped'): UndoEntry => ({ ...head('undo'), step, ...(how === 'lost' ? { lost: true } : how === 'skipped' ? { skipped: true } : {}) }),
  uncommit: (generation: number): UncommitEntry => ({ ...head('uncommit'), generation }),
  commit: (generation: number, machines: string[]): CommitEntry => ({ ...head('commit'), generation, machines }),
  outcome: (kind: OutcomeEntry['kind'], generation: number, by?: 'recovery'): OutcomeEntry => ({ ...head(kind), generation, ...(by ? { by } : {}) }),
  undoIncomplete: (errors: string[]): UndoIncompleteEntry => ({ ...head('undo-incomplete'), errors }),
  recovery: (pid: number): RecoveryEntry => ({ ...head('recovery'), pid }),
  abandon: (machine: string, by: string, reason: string): AbandonEntry => ({ ...head('abandon'), machine, by, reason }),
};

const KINDS = new Set(['begin', 'lock-broken', 'lock-lost', 'step', 'undo-start', 'undo', 'uncommit', 'commit', 'committed', 'rolled-back', 'undo-incomplete', 'recovery', 'abandon']);
const base = { v: z.literal(JOURNAL_VERSION), at: z.string() };
const planShape = z.looseObject({
  format: z.literal(PLAN_FORMAT),
  kind: z.enum(PLAN_KINDS),
  deployment: z.string().min(1),
  basis: z.looseObject({ generation: z.number().int().nullable(), manifestHash: z.string().nullable() }),
  generation: z.number().int(),
  desired: manifestSchema,
  steps: z.array(z.looseObject({ id: z.string(), phase: z.string(), action: z.string(), machine: z.string(), item: z.looseObject({}), after: z.array(z.string()) })),
  uploads: z.record(z.string(), z.array(z.looseObject({ hash: z.string() }))),
  machines: z.array(z.string()),
});
const recordShape = generationRecordSchema.pick({ source: true, commit: true, rolledBackTo: true });

// Objects are loose for the same reason as the state files' (src/state/schemas.ts).
const entrySchema = z.discriminatedUnion('kind', [
  z.looseObject({ ...base, kind: z.literal('begin'), generation: z.number().int(), basis: planShape.shape.basis, owner: z.string(), token: z.string(), pid: z.number().int(), host: z.string(), leaseMs: z.number(), plan: planShape, record: recordShape }),
  z.looseObject({ ...base, kind: z.literal('lock-broken'), machine: z.string(), holder: z.looseObject({}), why: z.string() }),
  z.looseObject({ ...base, kind: z.literal('lock-lost'), machine: z.string(), error: z.string() }),
  z.looseObject({ ...base, kind: z.literal('step'), status: z.enum(['start', 'done']), step: z.string() }),
  z.looseObject({ ...base, kind: z.literal('undo-start'), steps: z.array(z.string()) }),
  z.looseObject({ ...base, kind: z.literal('undo'), step: z.string(), lost: z.literal(true).optional(), skipped: z.literal(true).optional() }),
  z.looseObject({ ...base, kind: z.literal('uncommit'), generation: z.number().int() }),
  z.looseObject({ ...base, kind: z.literal('commit'), generation: z.number().int(), machines: z.array(z.string()) }),
  z.looseObject({ ...base, kind: z.enum(['committed', 'rolled-back']), generation: z.number().int(), by: z.literal('recovery').optional() }),
  z.looseObject({ ...base, kind: z.literal('undo-incomplete'), errors: z.array(z.string()) }),
  z.looseObject({ ...base, kind: z.literal('recovery'), pid: z.number().int() }),
  z.looseObject({ ...base, kind: z.literal('abandon'), machine: z.string().min(1), by: z.string(), reason: z.string() }),
]);

/** One entry as its line is written (with its newline). */
export function journalLine(e: JournalEntry): string {
  return `${JSON.stringify(e)}\n`;
}

/**
 * One line of the journal file, as an entry. Not JSON, of an unknown version or kind, or of the
 * wrong shape: STATE_CORRUPT naming the file and the line.
 */
export function parseJournalLine(file: string, line: string, lineNo: number): JournalEntry {
  const where = `line ${lineNo} `;
  const value = fromUnversioned(parseStateJson(file, line, where));
  if (isJournalEntry(value)) return value;
  const v = typeof value === 'object' && value !== null && 'v' in value ? value.v : undefined;
  const kind = typeof value === 'object' && value !== null && 'kind' in value ? value.kind : undefined;
  if (v !== JOURNAL_VERSION) throw corrupt(file, `${where}is a journal entry of version ${JSON.stringify(v)}, which this strata does not know (it writes version ${JOURNAL_VERSION})`);
  if (typeof kind !== 'string' || !KINDS.has(kind)) throw corrupt(file, `${where}is a journal entry of kind ${JSON.stringify(kind)}, which this strata does not know`);
  const issue = entrySchema.safeParse(value).error?.issues[0];
  throw corrupt(file, `${where}has the wrong shape: ${issue?.path.map(String).join('.') || 'entry'}: ${issue?.message ?? 'invalid'}`);
}

/**
 * An entry of a journal written before entries had a version (an interrupted transition of an
 * older strata, recovered by this one): its `event` is the kind, under the names of then.
 */
function fromUnversioned(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || 'v' in value || !('event' in value)) return value;
  const { event, ...rest } = value;
  const renamed = new Map<unknown, string>([
    ['rollback', 'undo-start'],
    ['rollback-incomplete', 'undo-incomplete'],
  ]);
  // Its plan is of format strata-plan/1, which has no kind (src/plan/format.ts reads it).
  const plan = event === 'begin' && 'plan' in rest ? { plan: tryPlan(rest.plan) } : {};
  return { ...rest, ...plan, v: JOURNAL_VERSION, kind: renamed.get(event) ?? event };
}

function tryPlan(doc: unknown): unknown {
  try {
    return planFromDocument(doc, 'the journal');
  } catch {
    return doc; // refused by the schema below, with the line
  }
}

function isJournalEntry(x: unknown): x is JournalEntry {
  return entrySchema.safeParse(x).success;
}
