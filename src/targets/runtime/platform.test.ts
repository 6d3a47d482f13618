import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimePartPath } from './script.ts';

// Each variant of lib/platform.sh, run by a real sh on this machine: the ones this machine has
// (GNU, BusyBox's applets, shasum, openssl, ss, netstat, ps) stand in for the BSDs' where the
// output format is the same (docs/runtime.md, "Platforms").
let work: string;
let applets: string;
const LIB = ['lib/base.sh', 'lib/detect.sh', 'lib/platform.sh', 'lib/ports.sh'].map((p) => `. '${runtimePartPath(p)}'`).join('\n');

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-platform-'));
  applets = join(work, 'busybox');
  mkdirSync(applets);
  const list = spawnSync('busybox', ['--list'], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error('busybox is needed (Debian package busybox)');
  for (const a of list.stdout.split('\n')) if (a) symlinkSync('/usr/bin/busybox', join(applets, a));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs SCRIPT after the library, with the variables `vars`, by dash or by BusyBox ash alone. */
function sh(script: string, vars: Record<string, string>, opts: { busybox?: boolean; input?: string } = {}) {
  const path = opts.busybox ? applets : (process.env.PATH ?? '/usr/bin:/bin');
  const r = spawnSync(opts.busybox ? join(applets, 'sh') : '/usr/bin/dash', ['-c', `${LIB}\n${script}`], {
    cwd: work,
    input: opts.input,
    encoding: 'utf8',
    env: { PATH: path, ...vars },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('copy_bytes', () => {
  for (const [read, busybox] of [['dd', true], ['dd', false], ['head', false]] as const) {
    it(`with ${read}${busybox ? ' on BusyBox' : ''} writes exactly N bytes of a pipe and leaves the rest`, () => {
      const r = sh('printf "abcdefgh%06000d" 0 | { copy_bytes 3 out && cat out && printf "|" && cat | wc -c; }', { STRATA_READ: read }, { busybox });
      expect(r.err).toBe('');
      expect(r.out.replace(/ +/g, '')).toBe('abc|6005\n');
    });
  }

  it('with dd says so when the input ends first', () => {
    expect(sh('printf ab | copy_bytes 3 out', { STRATA_READ: 'dd' }).code).toBe(1);
  });
});

describe('files', () => {
  it('file_mode and file_mtime by GNU stat, and by BusyBox stat', () => {
    writeFileSync(join(work, 'f'), 'x');
    chmodSync(join(work, 'f'), 0o640);
    for (const busybox of [false, true]) {
      const r = sh('file_mode f; file_mtime f', { STRATA_STAT: 'gnu' }, { busybox });
      expect(r.out).toMatch(/^640\n\d{10}\n$/);
    }
  });

  it('sha256_line prints sha256sum\'s line with every tool, and sums_check finds a changed and a missing file', () => {
    writeFileSync(join(work, 'a'), 'one\n');
    writeFileSync(join(work, 'b'), 'two\n');
    const expected = sh('sha256sum -- a', {}).out;
    for (const tool of ['sha256sum', 'shasum', 'openssl']) {
      const vars = { STRATA_SHA256: tool };
      expect(sh('sha256_line a', vars).out).toBe(expected);
      expect(sh('sha256_line a > sums && sha256_line b >> sums && sums_check sums', vars).out).toBe('');
      expect(sh('sha256_line a > sums && sha256_line b >> sums && echo changed > b && sums_check sums', vars).out).toBe('changed b\n');
      writeFileSync(join(work, 'b'), 'two\n');
      expect(sh('sha256_line a > sums && sha256_line b >> sums && rm a && sums_check sums', vars).out).toBe('missing a\n');
      writeFileSync(join(work, 'a'), 'one\n');
    }
  });
});

describe('listening_sockets', () => {
  let server: Server;
  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(47010, '127.0.70.200', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  // 127.0.70.200:47010 as /proc/net/tcp writes it: C84600 7F, B7A2.
  for (const [tool, busybox] of [['ss', false], ['netstat', false], ['netstat', true]] as const) {
    it(`by ${tool}${busybox ? ' (BusyBox)' : ''} lists a listening socket as /proc/net/tcp does`, () => {
      const r = sh('listening_sockets', { STRATA_PORTS: tool }, { busybox });
      expect(r.out.split('\n')).toContain('0: C846007F:B7A2 00000000:0000 0A');
    });
  }

  for (const ports of ['proc', 'ss', 'netstat']) {
    it(`listening_keys per ${ports} finds the item whose address and port listen, and not the others`, () => {
      writeFileSync(join(work, 'list'), 'a 127.0.70.200 47010\nb 127.0.70.201 47010\nc 127.0.70.200 47011\n');
      const r = sh('listening_keys list; echo "[$listening]"', { STRATA_PORTS: ports });
      expect(r.out).toBe('[ a ]\n');
    });
  }
});

describe('processes', () => {
  it('without setsid, SESSION_PERL runs a command in a session of its own', () => {
    const r = sh('perl -e "$SESSION_PERL" sh -c \'ps -o sid= -p $$; echo $$\'', { STRATA_SESSION: 'perl' });
    expect(r.err).toBe('');
    const [sid, pid] = r.out.trim().split(/\s+/);
    expect(sid).toBe(pid);
  });

  it('runtime_busy_ps finds another runtime process running a busy verb on this ROOT', async () => {
    const shared = join(work, 'shared');
    mkdirSync(join(shared, 'runtime'), { recursive: true });
    writeFileSync(join(shared, 'runtime/x.sh'), 'sleep 5\n');
    const other = spawn('/usr/bin/dash', [join(shared, 'runtime/x.sh'), join(shared, 'deployments/d'), 'upload'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const vars = { SHARED: shared, ROOT: join(shared, 'deployments/d'), VERBS_BUSY: 'upload activate' };
      expect(sh('runtime_busy_ps', vars).out.trim()).toBe(`${other.pid} upload`);
      expect(sh('runtime_busy_ps', { ...vars, ROOT: join(shared, 'deployments/e') }).code).toBe(1);
    } finally {
      other.kill();
    }
  });

  it('iso_time by GNU or BusyBox date, and the seconds where there is no way', () => {
    expect(sh('iso_time 86400', {}).out).toBe('1970-01-02T00:00:00Z\n');
    expect(sh('iso_time 86400', {}, { busybox: true }).out).toBe('1970-01-02T00:00:00Z\n');
    expect(sh('PATH=/nonexistent; iso_time 86400', {}).out).toBe('86400');
  });
});

describe('detect_platform', () => {
  it('chooses head on GNU and dd on BusyBox, and names what is missing', () => {
    expect(sh('detect_platform', {}).out).toMatch(/^STRATA_READ=head$/m);
    const busybox = sh('detect_platform', {}, { busybox: true });
    expect(busybox.out).toMatch(/^STRATA_READ=dd$/m);
    expect(busybox.out).toMatch(/^STRATA_SESSION=setsid$/m);
    expect(sh('PATH=/nonexistent; detect_platform', {}, { busybox: true })).toMatchObject({ code: 1, out: expect.stringMatching(/^missing awk\n/) });
  });
});
