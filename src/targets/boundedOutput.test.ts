import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TargetError } from '../errors.ts';
import { LocalTarget } from './local.ts';
import { escapeControls, machineText } from './machineText.ts';

// The bounds on a command's answer, through real /bin/sh processes of the local target.
const dir = mkdtempSync(join(tmpdir(), 'strata-bounded-'));
const t = new LocalTarget('m1', 20_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

describe('bounded answers', () => {
  it('stops an endless stdout at its bound, promptly, naming the machine and the verb', async () => {
    const t0 = Date.now();
    const e = await refusal(t.run(['yes', 'garbage'], { maxStdoutBytes: 1024 ** 2, verb: 'status' }));
    expect(e.code).toBe('MACHINE_ANSWER_TOO_LARGE');
    expect(e.message).toBe('m1 sent more than 1 MiB on stdout for status: the command was stopped and its answer dropped (a machine answers within the bound, or it is not trusted)');
    expect(e.data).toMatchObject({ machine: 'm1', verb: 'status', stream: 'stdout', limit: 1024 ** 2 });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('stops a stderr flood at its bound, and stops what the shell started too', async () => {
    const marker = `flood-${process.pid}-${Date.now()}`;
    const e = await refusal(t.run(['sh', '-c', `yes ${marker} >&2 & wait`], { maxStderrBytes: 64 * 1024, verb: 'lock' }));
    expect(e.code).toBe('MACHINE_ANSWER_TOO_LARGE');
    expect(e.data).toMatchObject({ stream: 'stderr', verb: 'lock' });
    await new Promise((r) => setTimeout(r, 300));
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(marker);
  });

  it('takes an answer within the bound, and escapes control characters in stderr', async () => {
    const r = await t.run(['sh', '-c', 'printf "abc"; printf "\\033[2J\\033]0;title\\007\\rtail\\n" >&2'], { maxStdoutBytes: 3 });
    expect(r.stdout).toBe('abc');
    expect(r.stderr).toBe('\\x1b[2J\\x1b]0;title\\x07\\x0dtail\n');
  });

  it('streams stdout into a new file, with its size and sha256, and removes it when cut off', async () => {
    const file = join(dir, 'answer');
    const r = await t.run(['head', '-c', '3000000', '/dev/urandom'], { stdoutFile: file, maxStdoutBytes: 4_000_000 });
    expect(r.code).toBe(0);
    expect(r.stdoutBytes.byteLength).toBe(0);
    const bytes = readFileSync(file);
    expect(r.stdoutFile).toEqual({ path: file, size: 3_000_000, sha256: createHash('sha256').update(bytes).digest('hex') });
    // The file must be new: an existing one (or a link planted there) is never written through.
    expect((await refusal(t.run(['true'], { stdoutFile: file }))).code).toBe('ANSWER_NOT_STORED');
    const cut = join(dir, 'cut');
    expect((await refusal(t.run(['yes'], { stdoutFile: cut, maxStdoutBytes: 100_000, verb: 'snapshot' }))).message).toMatch(/^m1 sent more than 100000 bytes on stdout for snapshot/);
    expect(existsSync(cut)).toBe(false);
  });
});

describe('machineText', () => {
  it('escapes C0, C1, DEL and bidirectional controls, keeps newlines and tabs', () => {
    expect(escapeControls('a\u0000b\u001b[1m\u007f\u009b\u202e\t\n')).toBe('a\\x00b\\x1b[1m\\x7f\\x9b\\u{202e}\t\n');
    expect(escapeControls('a\nb\tc', true)).toBe('a\\x0ab\\x09c');
  });

  it('keeps the head and the tail of a long text and says how much it left out', () => {
    const s = machineText(`${'a'.repeat(100)}${'b'.repeat(1000)}${'c'.repeat(100)}`, 200);
    expect(s).toBe(`${'a'.repeat(100)} […1000 characters left out…] ${'c'.repeat(100)}`);
  });
});
