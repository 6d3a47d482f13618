import { z } from 'zod';
import { TargetError } from '../errors.ts';
import { IDENTIFIER } from '../model/schema.ts';
import { DIGITS, invalidAnswer, MAX_LINE } from './answers.ts';
import { machineText } from './machineText.ts';
import { LINE, MODULE_TYPES, TOKEN } from './runtime/protocol.ts';
import type { MachineRecord, OtherDeployment } from './runtimeApi.ts';

/**
 * Parsers of the generation records a machine answers with (`manifest`, `claims`): JSON checked
 * field by field against what strata reads of them (src/targets/answers.ts has the rule).
 */

/** Strings a record holds are bounded: a model's values, never megabytes. */
const text = z
  .string()
  .max(64 * 1024)
  .refine((s) => !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(s), 'holds control characters');
const name = z.string().regex(IDENTIFIER);
const stringMap = z.record(z.string().max(1024), text);

// The records' objects pass unknown fields through (a newer controller's record read by this
// one is still checked field by field for what this one uses), but every field it knows must be
// of its type.
const targetSchema = z.discriminatedUnion('kind', [
  z.looseObject({ kind: z.literal('ssh'), host: text, port: z.number().int().min(1).max(65535), user: text, root: text, hostKey: text.optional(), knownHosts: text.optional(), identity: text.optional(), trustOnFirstUse: z.boolean().optional() }),
  z.looseObject({ kind: z.literal('local'), root: text.optional() }),
]);

const specSchema = z.looseObject({
  start: text.optional(),
  env: stringMap.optional(),
  path: text.optional(),
  mode: text.optional(),
  allowed: z.array(text).optional(),
  database: text.optional(),
  ready: z.looseObject({ port: z.number().int().optional(), command: text.optional(), timeout: z.number() }).optional(),
});

const itemSchema = z.looseObject({
  key: z.string().regex(TOKEN).max(255),
  machine: name,
  layer: z.enum(['infrastructure', 'service']),
  name: text,
  module: z.enum(MODULE_TYPES),
  container: text.optional(),
  artifact: z.string().regex(TOKEN).max(255).optional(),
  spec: specSchema,
  dependsOn: z.array(text),
  bindings: z.array(text).optional(),
  stateful: z.boolean(),
  hash: text,
});

const recordSchema = z.looseObject({
  deployment: name,
  generation: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  manifestHash: text,
  machine: z.looseObject({ name, address: text, target: targetSchema, items: z.array(itemSchema) }).nullable(),
});

/**
 * `manifest [GEN]`: nothing (no generation recorded), or the MachineRecord `commit` stored, as
 * JSON; when GEN was asked for, the record must be that generation's.
 */
export function parseRecord(machine: string, stdout: string, generation?: number): MachineRecord | undefined {
  if (stdout.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch (e) {
    throw invalidAnswer(machine, 'manifest', `the generation record is not JSON (${machineText((e as Error).message, 200, true)})`);
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.map(String).join('.') : '(the record)';
    throw invalidAnswer(machine, 'manifest', `the generation record is not a MachineRecord: ${machineText(where, 200, true)}: ${machineText(issue.message, 200, true)}`);
  }
  const record = parsed.data as unknown as MachineRecord;
  if (record.machine && record.machine.name !== machine) throw invalidAnswer(machine, 'manifest', `the generation record is the one of machine ${record.machine.name}`);
  if (generation !== undefined && record.generation !== generation) throw invalidAnswer(machine, 'manifest', `asked for generation ${generation}, it sent the record of generation ${record.generation}`);
  return record;
}

/**
 * What a claim is derived from in another deployment's record (src/manifest/claims.ts): its
 * items, each with its module and spec. Checked no further: that record is its owner's to
 * validate, and a wrong one refuses the claim rather than letting it through.
 */
const otherRecordSchema = z.looseObject({
  deployment: name,
  generation: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  machine: z.looseObject({ items: z.array(z.looseObject({ key: z.string().max(255), module: z.string().max(64), spec: specSchema })) }).nullable(),
});

/**
 * The answer of `claims` and `claim`: per other deployment on the machine, "record NAME BYTES"
 * (its current generation record) or "pending NAME BYTES" (the record a transition of it is
 * making true), each followed by BYTES of JSON. The other deployment may call this machine by
 * another name, so the record's machine name is not checked against ours.
 */
export function parseOtherRecords(machine: string, out: Buffer): OtherDeployment[] {
  const records: OtherDeployment[] = [];
  let at = 0;
  let line = 0;
  while (at < out.length) {
    line++;
    const eol = out.indexOf(0x0a, at);
    if (eol < 0 || eol - at > MAX_LINE) throw invalidAnswer(machine, 'claims', 'an unterminated or overlong header line', line);
    const [tag, name, bytes, extra] = out.subarray(at, eol).toString('latin1').split(' ');
    at = eol + 1;
    if ((tag !== LINE.record && tag !== LINE.pending) || !name || !IDENTIFIER.test(name) || !DIGITS.test(bytes ?? '') || extra !== undefined) {
      throw invalidAnswer(machine, 'claims', 'expected "record NAME BYTES" or "pending NAME BYTES"', line);
    }
    const size = Number(bytes);
    if (at + size > out.length) throw invalidAnswer(machine, 'claims', `the record of deployment ${name} is cut short (${out.length - at} of ${size} bytes)`, line);
    const text = out.subarray(at, at + size).toString('utf8');
    at += size;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // A record another deployment left damaged claims nothing we can read; its owner's own commands report it.
      throw new TargetError('RUNTIME_FAILED', `${machine}: the current generation record of deployment ${name} there is not valid JSON`, { machine, deployment: name });
    }
    const parsed = otherRecordSchema.safeParse(value);
    if (!parsed.success) {
      const where = parsed.error.issues[0]!.path.map(String).join('.') || '(the record)';
      throw new TargetError('RUNTIME_FAILED', `${machine}: the current generation record of deployment ${name} there is damaged (${machineText(where, 200, true)} is not what a generation record holds)`, { machine, deployment: name });
    }
    records.push({ deployment: name, record: parsed.data as unknown as MachineRecord, ...(tag === LINE.pending ? { pending: true as const } : {}) });
  }
  return records;
}
