import { TargetError } from '../errors.ts';
import type { BrokenLock, ItemStatus, LockHolder, MachineStatus } from './runtimeApi.ts';
import { excerpt, machineText } from './machineText.ts';
import { LINE, LOCK_ARG, MODULE_TYPES, TOKEN } from './runtime/protocol.ts';
import type { RunResult } from './target.ts';

/**
 * Parsers of what a machine's runtime answers (src/targets/runtime/protocol.ts). A machine is
 * outside the trust boundary: each answer is read by a strict format, and anything else (an
 * unknown line, a field that is not what the format says, a length frame longer than what
 * follows, a record that is not a MachineRecord) is MACHINE_ANSWER_INVALID naming the machine,
 * the verb and the line, never a TypeError or a value taken on trust. Text meant for people (a
 * drift reason, an activation's error output) is passed on escaped (machineText).
 */

export const DIGITS = /^\d{1,15}$/;
const MODULES: ReadonlySet<string> = new Set(MODULE_TYPES);
/** The longest line of a line answer that is read at all (a drift reason is a sentence). */
export const MAX_LINE = 8 * 1024;

export function invalidAnswer(machine: string, verb: string, why: string, line?: number): TargetError {
  return new TargetError('MACHINE_ANSWER_INVALID', `${machine} answered ${verb} with something strata does not understand${line === undefined ? '' : ` (line ${line})`}: ${why}; the machine's runtime is damaged or the machine is not to be trusted`, {
    machine,
    verb,
    ...(line === undefined ? {} : { line }),
  });
}

/** The lines of a line answer: each ends with "\n" (the last one may not); none is overlong. */
function linesOf(machine: string, verb: string, stdout: string): string[] {
  const lines = stdout.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((l, i) => {
    if (l.length > MAX_LINE) throw invalidAnswer(machine, verb, `a line of ${l.length} characters (at most ${MAX_LINE})`, i + 1);
  });
  return lines;
}

/**
 * `status`: "generation N|none", then "lock none|OWNER-LINE", then "item KEY MODULE STATE PID
 * ok|drift REASON" per active item (STATE is running or stopped for a process, present
 * otherwise; PID is digits or "-").
 */
export function parseStatus(machine: string, stdout: string): MachineStatus {
  const lines = linesOf(machine, 'status', stdout);
  const bad = (why: string, i: number) => invalidAnswer(machine, 'status', why, i + 1);
  const out: MachineStatus = { generation: null, lock: null, items: [] };
  const seen = new Set<string>();
  lines.forEach((line, i) => {
    const [kind = '', ...rest] = line.split(' ');
    if (i === 0) {
      if (kind !== LINE.generation || rest.length !== 1 || !(rest[0] === 'none' || DIGITS.test(rest[0]!))) throw bad(`expected "generation N" or "generation none", got ${excerpt(line)}`, i);
      out.generation = rest[0] === 'none' ? null : Number(rest[0]);
    } else if (i === 1) {
      if (kind !== LINE.lock || rest.length === 0) throw bad(`expected "lock none" or "lock OWNER", got ${excerpt(line)}`, i);
      const holder = rest.join(' ');
      out.lock = holder === 'none' ? null : machineText(holder, 512, true);
    } else if (kind === LINE.item) {
      const item = parseItemLine(rest, (why) => bad(`${why} in ${excerpt(line)}`, i));
      if (seen.has(item.key)) throw bad(`item ${item.key} is reported twice`, i);
      seen.add(item.key);
      out.items.push(item);
    } else throw bad(`unknown line ${excerpt(line)}`, i);
  });
  if (lines.length < 2) throw invalidAnswer(machine, 'status', lines.length === 0 ? 'an empty answer' : 'no "lock" line');
  return out;
}

function parseItemLine(fields: string[], bad: (why: string) => TargetError): ItemStatus {
  const [key = '', module = '', state = '', pid = '', verdict = '', ...reason] = fields;
  if (!TOKEN.test(key)) throw bad('an item key that is not one');
  if (!MODULES.has(module)) throw bad(`an unknown module`);
  const states = module === 'process' ? ['running', 'stopped'] : ['present'];
  if (!states.includes(state)) throw bad(`a state that is not ${states.join(' or ')}`);
  if (pid !== '-' && !(DIGITS.test(pid) && Number(pid) > 0)) throw bad('a pid that is not a number or "-"');
  if (state === 'running' && pid === '-') throw bad('a running process without a pid');
  if (verdict === 'ok' ? reason.length !== 0 : verdict !== 'drift' || reason.join('') === '') throw bad('a verdict that is not "ok" or "drift REASON"');
  return {
    key,
    module,
    state: state as ItemStatus['state'],
    ...(pid !== '-' ? { pid: Number(pid) } : {}),
    ...(verdict === 'drift' ? { drift: machineText(reason.join(' '), 1024, true) } : {}),
  };
}

/** The six fields of a lock after its tag: OWNER TOKEN PID TAKEN EXPIRES NOW. */
function holderOf(fields: string[], bad: (why: string) => TargetError): LockHolder {
  if (fields.length !== 6) throw bad(`${fields.length} field${fields.length === 1 ? '' : 's'} where a lock has 6 (OWNER TOKEN PID TAKEN EXPIRES NOW)`);
  const [owner, token, pid, taken, expires, now] = fields as [string, string, string, string, string, string];
  if (!LOCK_ARG.test(owner) || !LOCK_ARG.test(token)) throw bad('an owner or token that is not one');
  if (pid !== '-' && !DIGITS.test(pid)) throw bad('a pid that is not a number or "-"');
  for (const t of [taken, expires, now]) if (!DIGITS.test(t)) throw bad('a time that is not seconds since the epoch');
  return { owner, token, pid: pid === '-' ? null : Number(pid), takenAt: Number(taken), expiresAt: Number(expires), now: Number(now) };
}

/**
 * The answer of a refused `lock` or `renew` (exit 75): nothing, or one "held OWNER TOKEN PID
 * TAKEN EXPIRES NOW" line (the holder).
 */
export function parseHeld(machine: string, verb: string, stdout: string): LockHolder | undefined {
  const lines = linesOf(machine, verb, stdout);
  if (lines.length === 0) return undefined;
  const [tag, ...fields] = lines[0]!.split(' ');
  const bad = (why: string) => invalidAnswer(machine, verb, `${why} in ${excerpt(lines[0]!)}`, 1);
  if (lines.length > 1 || tag !== LINE.held) throw invalidAnswer(machine, verb, `expected one "held OWNER TOKEN PID TAKEN EXPIRES NOW" line, got ${excerpt(lines.join('\n'))}`);
  return holderOf(fields, bad);
}

/**
 * The answer of a taken lock: at most one "broke expired|dead-owner OWNER TOKEN PID TAKEN
 * EXPIRES NOW" (whose lock it broke), then "missing HASH" for each hash asked about that the
 * store lacks (only hashes that were asked about).
 */
export function parseLockTaken(machine: string, verb: string, stdout: string, asked: readonly string[]): { broke?: BrokenLock; missing: string[] } {
  const lines = linesOf(machine, verb, stdout);
  const askedSet = new Set(asked);
  const missing: string[] = [];
  let broke: BrokenLock | undefined;
  lines.forEach((line, i) => {
    const bad = (why: string) => invalidAnswer(machine, verb, `${why} in ${excerpt(line)}`, i + 1);
    const [tag, ...fields] = line.split(' ');
    if (tag === LINE.missing) {
      if (fields.length !== 1 || !askedSet.has(fields[0]!)) throw bad('a missing hash that was not asked about');
      if (!missing.includes(fields[0]!)) missing.push(fields[0]!);
    } else if (tag === LINE.broke && broke === undefined && missing.length === 0) {
      const [why = '', ...rest] = fields;
      if (why !== 'expired' && why !== 'dead-owner') throw bad('a reason that is not "expired" or "dead-owner"');
      broke = { ...holderOf(rest, bad), why };
    } else throw bad('an unknown line');
  });
  return broke ? { broke, missing } : { missing };
}

/**
 * The per-item results of `activate KEY...`: "ok KEY" lines and "failed KEY BYTES" + BYTES of
 * reason (length-framed: a reason may hold anything a service printed), for keys that were
 * asked about, each at most once. An answer that ends early (the runtime stopped before it got
 * to every key) is fine: those keys get no result and the command's stderr says why.
 */
export function parseActivations(machine: string, out: Buffer, keys: readonly string[]): Map<string, RunResult> {
  const results = new Map<string, RunResult>();
  const asked = new Set(keys);
  const empty = Buffer.alloc(0);
  let at = 0;
  let lineNo = 0;
  while (at < out.length) {
    lineNo++;
    const eol = out.indexOf(0x0a, at);
    const end = eol < 0 ? out.length : eol;
    const line = out.subarray(at, Math.min(end, at + MAX_LINE)).toString();
    const bad = (why: string) => invalidAnswer(machine, 'activate', `${why} in ${excerpt(line)}`, lineNo);
    if (eol < 0 || end - at > MAX_LINE) throw bad('a line without its end');
    const [verdict, key = '', bytes = '', ...more] = line.split(' ');
    at = eol + 1;
    const ok = verdict === LINE.ok && line === `${LINE.ok} ${key}`;
    const failed = verdict === LINE.failed && DIGITS.test(bytes) && more.length === 0;
    if (!ok && !failed) throw bad('an unknown line');
    if (!asked.has(key)) throw bad('a result for an item it was not asked to activate');
    if (results.has(key)) throw bad('a second result for one item');
    if (ok) results.set(key, { code: 0, stdout: '', stdoutBytes: empty, stderr: '' });
    else {
      const n = Number(bytes);
      if (n > out.length - at) throw bad(`a reason of ${n} bytes where ${out.length - at} follow`);
      results.set(key, { code: 1, stdout: '', stdoutBytes: empty, stderr: machineText(out.subarray(at, at + n)) });
      at += n;
    }
  }
  return results;
}
