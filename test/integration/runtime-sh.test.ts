import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT, shHeader } from '../../src/targets/runtime/protocol.ts';
import { RUNTIME_PARTS, runtimePartPath } from '../../src/targets/runtime/script.ts';

// The runtime's functions, tested alone: the library and the modules are sourced (which only
// defines functions: main.sh, which runs a verb, is left out) and one function is called, by
// each POSIX shell the runtime is written for.
// No root needed; everything happens in a temporary directory.
const T = mkdtempSync(join(tmpdir(), 'strata-rt-sh-'));
const lib = join(T, 'lib.sh');
writeFileSync(lib, [shHeader(), ...RUNTIME_PARTS.filter((p) => p !== 'main.sh').map((p) => readFileSync(runtimePartPath(p), 'utf8'))].join('\n'));
afterAll(() => rmSync(T, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

// Each is needed (.ci/run installs dash and busybox): a missing one fails its tests.
const SHELLS = [['sh'], ['dash'], ['bash', '--posix'], ['busybox', 'sh']];

const allowed = join(T, 'allowed');
const elsewhere = join(T, 'elsewhere');
mkdirSync(join(allowed, 'real'), { recursive: true });
mkdirSync(elsewhere);
symlinkSync(elsewhere, join(allowed, 'link'));
writeFileSync(join(T, 'allowed.list'), `${allowed}\n`);

describe.each(SHELLS.map((argv) => [argv.join(' '), argv] as const))('the runtime\'s functions under %s', (name, argv) => {
  const W = join(T, name.replaceAll(' ', '-'));
  mkdirSync(W, { recursive: true });

  /** Runs `body` after sourcing the runtime's functions; T is the test's directory, W this shell's own in it. */
  function sh(body: string, input?: string | Buffer): Ran {
    const env = { PATH: process.env.PATH, HOME: W, T, W, STRATA_MIN_FREE_KB: '0' };
    const [cmd, ...opts] = argv;
    const r = spawnSync(cmd!, [...opts, '-c', `. "$1"\n${body}`, 'sh', lib], { input, env, encoding: 'utf8', timeout: 20_000 });
    if (r.error) throw new Error(`${name} is needed for this test: ${r.error.message}`);
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  describe('the path walk', () => {
    const walk = (path: string, mode: string, after = '') => sh(`SHARED=$T/root ROOT=$T/root/deployments/a\nwr_root_of "${path}" "$T/allowed.list"\nwr_enter "${path}" ${mode}\n${after}`);

    it('makes and enters the missing directories below an allowed path', () => {
      const r = walk(join(allowed, `real/${name}/b`), 'create', 'printf "%s %s" "$wr_reached" "$PWD"');
      expect(r).toMatchObject({ code: 0, out: `1 ${join(allowed, `real/${name}/b`)}` });
    });

    it('refuses a symbolic link below an allowed path, creating nothing through it', () => {
      const r = walk(join(allowed, 'link/sub'), 'create');
      expect(r.code).toBe(EXIT.FAILED);
      expect(r.err).toContain(`${join(allowed, 'link')} is a symbolic link`);
      expect(existsSync(join(elsewhere, 'sub'))).toBe(false);
    });

    it('when removing, says why it leaves a path alone and returns 1 instead of dying', () => {
      const r = walk(join(allowed, 'link/sub'), 'remove || echo "left alone"');
      expect(r).toMatchObject({ code: 0, out: 'left alone\n' });
      expect(r.err).toContain('not removing');
    });

    it('refuses a path outside every allowed path, and one with ".." in it', () => {
      expect(walk('/etc/x', 'create').err).toContain('outside the machine\'s allowedPaths');
      expect(walk(`${allowed}/real/../link`, 'create').err).toContain('contains . or .. segments');
    });
  });

  describe('the stream framing (unpack)', () => {
    const out = join(W, 'unpacked');
    const unpack = (input: string | Buffer, after = '') => sh(`rm -rf "$W/unpacked"; mkdir "$W/unpacked"; unpack "$W/unpacked"\n${after}`, input);

    it('reads exactly SIZE bytes and LINES lines, and nothing after the end of the tree', () => {
      const r = unpack('D 0 755 d\nF 6 644 d/a\nhel\nloT 2 644 b\nx\ny\nE\nREST', 'printf "end=%s " "$unpack_end"; cat');
      expect(r).toMatchObject({ code: 0, out: 'end=E REST' });
      expect(readFileSync(join(out, 'd/a'), 'utf8')).toBe('hel\nlo');
      expect(readFileSync(join(out, 'b'), 'utf8')).toBe('x\ny\n');
    });

    it('dies when the stream ends early, in raw bytes or in text lines', () => {
      for (const input of ['F 10 644 a\nabc', 'T 3 644 b\nx\n', 'F 1 644 a\nx']) {
        const r = unpack(input);
        expect(r.code, input).toBe(EXIT.FAILED);
        expect(r.err, input).toContain('stream ended early');
      }
    });

    it('refuses a path that leaves the tree and a line it does not know', () => {
      expect(unpack('F 1 644 ../x\nx').err).toContain('unsafe path in stream: ../x');
      expect(unpack('X 1 644 a\n').err).toContain('malformed stream');
    });
  });

  describe('the lock', () => {
    const setup = 'SHARED=$W/lockroot ROOT=$W/lockroot/deployments/app VERB=lock; mkdir -p "$ROOT"\n';
    const owner = () => readFileSync(join(W, 'lockroot/deployments/app/lock/owner'), 'utf8');

    it('is taken, refused to another owner, renewed, and released by its holder only', () => {
      expect(sh(`${setup}verb_lock ctl:1 tok1 11 60`).code).toBe(EXIT.OK);
      const [o, t, p, taken, expires] = owner().trim().split(' ');
      expect([o, t, p]).toEqual(['ctl:1', 'tok1', '11']);
      expect(Number(expires) - Number(taken)).toBe(60);

      const refused = sh(`${setup}verb_lock other:2 tok2 22 60`);
      expect(refused.code).toBe(EXIT.LOCKED);
      expect(refused.out).toMatch(/^held ctl:1 tok1 11 \d+ \d+ \d+\n$/);

      expect(sh(`${setup}verb_renew ctl:1 tok1 120`).code).toBe(EXIT.OK);
      const renewed = owner().trim().split(' ');
      expect(renewed[3]).toBe(taken);
      expect(Number(renewed[4]) - Number(taken)).toBeGreaterThanOrEqual(120);
      expect(sh(`${setup}verb_renew other:2 tok2 60`).code).toBe(EXIT.LOCKED);

      expect(sh(`${setup}verb_unlock other:2 tok2`).code).toBe(EXIT.LOCKED);
      expect(sh(`${setup}verb_unlock ctl:1 tok1`).code).toBe(EXIT.OK);
      expect(existsSync(join(W, 'lockroot/deployments/app/lock'))).toBe(false);
      expect(existsSync(join(W, 'lockroot/deployments/app/lock.guard'))).toBe(false);
    });

    it('breaks a lock whose lease expired, and says whose it was', () => {
      mkdirSync(join(W, 'lockroot/deployments/app/lock'), { recursive: true });
      writeFileSync(join(W, 'lockroot/deployments/app/lock/owner'), 'dead:9 tok9 99 1000 1060\n');
      const r = sh(`${setup}verb_lock ctl:1 tok1 11 60`);
      expect(r).toMatchObject({ code: EXIT.OK });
      expect(r.out).toMatch(/^broke expired dead:9 tok9 99 1000 1060 \d+\n$/);
      expect(owner()).toMatch(/^ctl:1 tok1 11 /);
      expect(existsSync(join(W, 'lockroot/deployments/app/lock.guard'))).toBe(false);
    });
  });

  describe('token checks', () => {
    it.each([
      ['check_token', 's.hello-world', EXIT.OK],
      ['check_token', '0123abcdef', EXIT.OK],
      ['check_token', '.hidden', EXIT.USAGE],
      ['check_token', 'a/b', EXIT.USAGE],
      ['check_token', 'a b', EXIT.USAGE],
      ['check_token', '', EXIT.USAGE],
      ['lock_arg', 'host.example:0a1b@x', EXIT.OK],
      ['lock_arg', 'a;b', EXIT.USAGE],
      ['lock_arg', '$(x)', EXIT.USAGE],
    ])('%s %j exits %i', (fn, arg, code) => {
      expect(sh(`${fn} "$1"; echo passed`.replace('$1', arg.replaceAll('$', '\\$'))).code).toBe(code);
    });
  });

  describe('the exit registry', () => {
    it('runs every registered cleanup once, newest first, but not one taken back', () => {
      expect(sh("on_exit_add 'echo one'; on_exit_add 'echo two'; on_exit_add 'echo three'; on_exit_remove 'echo two'; exit 3")).toMatchObject({ code: 3, out: 'three\none\n' });
    });

    it('runs them when the runtime is stopped by a signal', () => {
      expect(sh("on_exit_add 'echo cleaned'; kill -s TERM $$; sleep 5; echo not-reached")).toMatchObject({ code: EXIT.SIGNALLED, out: 'cleaned\n' });
    });

    it('keeps a subshell with its own cleanups from running its parent\'s', () => {
      expect(sh("on_exit_add 'echo parent'; (on_exit_reset; on_exit_add 'echo child'); echo after")).toMatchObject({ code: 0, out: 'child\nafter\nparent\n' });
    });

    it('sets no trap once every cleanup is taken back', () => {
      expect(sh("on_exit_add 'echo one'; on_exit_remove 'echo one'; trap")).toMatchObject({ code: 0, out: '' });
    });
  });

  describe('module dispatch', () => {
    it.each([
      ['probe', 'file', 'file_probe'],
      ['activate', 'postgresql-database', 'postgresql_database_activate'],
      ['activate_all', 'process', 'process_activate_all'],
      ['probe', 'script', 'none'],
      ['activate', 'nope', 'none'],
      ['activate', 'file_probe', 'none'],
      ['activate', "'file script'", 'none'],
      ['activate', "''", 'none'],
    ])('%s of %s is %s', (verb, type, fn) => {
      expect(sh(`module_fn ${verb} ${type} && echo "$mod_fn" || echo none`).out).toBe(`${fn}\n`);
    });
  });
});
