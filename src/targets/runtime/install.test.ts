import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installScript, parseMissing } from './install.ts';
import { EXIT } from './protocol.ts';

// The install command run by the machine's own sh, here the local one: with BusyBox's applets
// as the only commands (as on a BusyBox machine) and with the local tools.
const RUNTIME = Buffer.from('printf "ran %s\\n" "$2"; cat\n');
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'strata-install-'));
  dirs.push(d);
  return d;
}

/** A directory holding BusyBox's applets, less `without`. */
function busyboxPath(without: string[] = []): string {
  const bin = join(temp(), 'bin');
  mkdirSync(bin);
  const list = spawnSync('busybox', ['--list'], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error('busybox is needed (Debian package busybox)');
  for (const a of list.stdout.split('\n')) if (a && !without.includes(a)) symlinkSync('/usr/bin/busybox', join(bin, a));
  return bin;
}

/** Runs the install command with `sh` (BusyBox's when `sh` is 'busybox': PATH's own `sh`). */
function run(sh: string, path: string, runtime: string, input: Buffer, thenRun = true) {
  return spawnSync(sh === 'busybox' ? join(path, 'sh') : sh, ['-c', installScript(RUNTIME.byteLength, thenRun), 'strata', runtime, '/root-of-it', 'verb'], { input, env: { PATH: path } });
}

describe.each([
  ['BusyBox ash with only its applets', 'busybox', () => busyboxPath()],
  ['dash with the machine\'s tools', '/usr/bin/dash', () => process.env.PATH ?? '/usr/bin:/bin'],
])('the install command, on %s', (_name, sh, path) => {
  it('installs the runtime, reads exactly its bytes, and runs the verb on the rest of the input', () => {
    const runtime = join(temp(), 'runtime/abc.sh');
    const rest = Buffer.alloc(200_000, 'x');
    const r = run(sh, path(), runtime, Buffer.concat([RUNTIME, rest]));
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe(`ran verb\n${rest.toString()}`);
    expect(readFileSync(runtime)).toEqual(RUNTIME);
    expect(readFileSync(runtime.replace(/\.sh$/, '.env'), 'utf8')).toMatch(/^STRATA_SHA256=\w+\nSTRATA_STAT=(gnu|bsd)\nSTRATA_PORTS=proc\nSTRATA_READ=(head|dd)\n/);
  });

  it('skips the runtime it was sent when the machine has it', () => {
    const runtime = join(temp(), 'abc.sh');
    writeFileSync(runtime, RUNTIME);
    const r = run(sh, path(), runtime, Buffer.concat([Buffer.alloc(RUNTIME.byteLength, '#'), Buffer.from('input')]));
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe('ran verb\ninput');
  });
});

describe('first contact with a machine that lacks commands', () => {
  it('is refused with the missing commands named, and nothing is written', () => {
    const top = temp();
    const runtime = join(top, 'strata/runtime/abc.sh');
    const r = run('busybox', busyboxPath(['mv', 'sha256sum']), runtime, RUNTIME);
    expect(r.status).toBe(EXIT.UNSUPPORTED);
    expect(parseMissing(r.stdout.toString())).toEqual(['mv', 'sha256sum|shasum|sha256|openssl']);
    expect(existsSync(join(top, 'strata'))).toBe(false);
  });

  it('a runtime cut short is not installed', () => {
    const runtime = join(temp(), 'abc.sh');
    const r = run('busybox', busyboxPath(), runtime, RUNTIME.subarray(0, 10), false);
    expect(r.status).toBe(EXIT.INSTALL_FAILED);
    expect(r.stderr.toString()).toMatch(/cut short/);
    expect(existsSync(runtime)).toBe(false);
  });
});
