import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTarget } from '../../src/targets/local.ts';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { runtimePath } from '../../src/targets/runtime/script.ts';
import { type Testnet, hostPath, testnetDown, testnetUp } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';

// Section 3 of the trust boundary: nothing outside allowedPaths is written or removed on a
// machine, and strata's records there are private. Real sshd test hosts, real symlinks made
// inside a host. Every link points at a sentinel directory in the host's own /tmp (outside
// allowedPaths, private to the host): never at the real machine's /etc.
let work: string;
let net: Testnet;
let root: string;
let stateDir: string;
const on = (p: string) => hostPath(net.hosts[0]!, p);
const SENTINEL_PASSWD = 'root:x:0:0:sentinel:/root:/bin/sh\n';

const files: Record<string, string> = {
  'strata.yaml': 'name: writes\nnetwork: [network.yaml, testnet/network.physical.yaml]\nservices: services.yaml\ndistribution: distribution.yaml\n',
  'network.yaml': [
    'machines:',
    '  m1:',
    '    allowedPaths: [/tmp/allowed, /tmp/allowed2]',
    '    directories:',
    '      - { path: /tmp/allowed/made, mode: "0750" }',
    '    files:',
    '      - { path: /tmp/allowed/etc/app.conf, content: "secret = 1\\n", mode: "0600" }',
    // Its runtime root lies beside its allowed path; a model that widens the allowed path over
    // the root is refused before anything reaches a machine.
    '  m2:',
    '    root: /tmp/r2',
    '    allowedPaths: [/tmp/m2]',
    '',
  ].join('\n'),
  'services.yaml': [
    'services:',
    '  site:',
    '    type: file',
    '    artifact: site',
    '    path: /tmp/allowed/site',
    '  worker:',
    '    type: process',
    // It drops its privileges, as a PostgreSQL server does: its STATE_DIR must stay reachable.
    '    start: chown nobody "$STATE_DIR" && echo started && exec setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c \'touch "$STATE_DIR/made-by-service" && exec sleep 600\'',
    '    env: { TOKEN: "not-for-others" }',
    '',
  ].join('\n'),
  'distribution.yaml': 'distribution:\n  site: m1\n  worker: m1\n',
  'site/index.html': '<h1>site</h1>\n',
  'site/conf/passwd': 'from the repository\n',
  'planter/r2/planted': 'over the records\n',
};

const edit = (file: string, from: string, to: string) => {
  const path = join(work, file);
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no ${from}`);
  writeFileSync(path, text.replace(from, to));
};
const apply = () => cli('apply', root, '--state', stateDir, '-q');
const mode = (p: string) => statSync(p).mode & 0o777;
function lstatSafe(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Every directory and file strata keeps under the host's ROOT, but the store, the runtime and what services make. */
function records(dir: string, top = true): { path: string; dir: boolean; mode: number }[] {
  const out: { path: string; dir: boolean; mode: number }[] = [];
  for (const name of readdirSync(dir)) {
    if (top && (name === 'store' || name === 'runtime')) continue;
    if (name === 'made-by-service') continue;
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink() && name === 'store') continue; // a deployment's view of the shared store
    out.push({ path: p, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) out.push(...records(p, false));
  }
  return out;
}
/**
 * Records whose mode is not 0600 (files) or 0700 (directories). The directories between ROOT
 * and a STATE_DIR are 0711 instead: a service that drops its privileges reaches its STATE_DIR
 * through them, while nobody else may list them.
 */
function loose(strataRoot: string): { path: string; mode: number }[] {
  const stateDirs = findAll(strataRoot, (p) => p.endsWith('/made-by-service')).map((p) => join(p, '..'));
  const aboveState = (p: string) => stateDirs.some((s) => s.startsWith(`${p}/`));
  return records(strataRoot)
    .filter((e) => e.mode !== (e.dir ? (aboveState(e.path) ? 0o711 : 0o700) : 0o600))
    .map(({ path, mode }) => ({ path, mode }));
}
function findAll(dir: string, test: (path: string) => boolean): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((rel) => join(dir, rel))
    .filter((p) => lstatSync(p).isFile() && test(p));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-writes-'));
  for (let i = 0; i < 80; i++) files[`race/conf/f${String(i).padStart(3, '0')}`] = `file ${i}\n`;
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(work, name, '..'), { recursive: true });
    writeFileSync(join(work, name), text);
  }
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['m1', 'm2'], subnet: '127.0.43' });
  root = join(work, 'strata.yaml');
  stateDir = join(work, '.state');
  mkdirSync(on('/tmp/sentinel'));
  writeFileSync(on('/tmp/sentinel/passwd'), SENTINEL_PASSWD);
  writeFileSync(on('/tmp/sentinel/keep'), 'keep\n');
});

afterAll(async () => {
  if (net) {
    if (existsSync(stateDir)) await cli('destroy', root, '--state', stateDir, '-q');
    await testnetDown(net.dir);
  }
  rmSync(work, { recursive: true, force: true });
});

const sentinelUntouched = () => {
  expect(readFileSync(on('/tmp/sentinel/passwd'), 'utf8')).toBe(SENTINEL_PASSWD);
  expect(readFileSync(on('/tmp/sentinel/keep'), 'utf8')).toBe('keep\n');
  expect(readdirSync(on('/tmp/sentinel')).sort()).toEqual(['keep', 'passwd']);
};

describe('writes on a machine stay inside allowedPaths', () => {
  it('refuses a file service whose tree reaches outside through a symlink (conf -> /etc), writing nothing', async () => {
    mkdirSync(on('/tmp/allowed/site'), { recursive: true });
    symlinkSync('/tmp/sentinel', on('/tmp/allowed/site/conf'));
    const r = await apply();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refusing path "\/tmp\/allowed\/site\/conf\/passwd": \/tmp\/allowed\/site\/conf is a symbolic link/);
    sentinelUntouched();
    // Refused before anything was written: not even the tree's other file.
    expect(existsSync(on('/tmp/allowed/site/index.html'))).toBe(false);
    expect(readdirSync(on('/tmp/allowed/site'))).toEqual(['conf']);
  });

  it('places the tree once the link is gone; records are 0600 in 0700 directories; deployed files keep their modes', async () => {
    unlinkSync(on('/tmp/allowed/site/conf'));
    const r = await apply();
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(on('/tmp/allowed/site/conf/passwd'), 'utf8')).toBe('from the repository\n');
    expect(readdirSync(on('/tmp/allowed/site')).sort()).toEqual(['conf', 'index.html']);
    // What is deployed keeps the modes the models give it.
    expect(mode(on('/tmp/allowed/site/index.html'))).toBe(0o644);
    expect(mode(on('/tmp/allowed/site/conf'))).toBe(0o755);
    expect(mode(on('/tmp/allowed/etc/app.conf'))).toBe(0o600);
    expect(mode(on('/tmp/allowed/made'))).toBe(0o750);
    const strataRoot = on('/var/lib/strata');
    const made = findAll(strataRoot, (p) => p.endsWith('/made-by-service'));
    expect(made).toHaveLength(1);
    expect(mode(made[0]!)).toBe(0o644); // a service still runs with umask 022
    expect(statSync(made[0]!).uid).not.toBe(0);
    // The worker's environment file holds its TOKEN: owner only.
    const envs = findAll(strataRoot, (p) => p.endsWith('/env') && readFileSync(p, 'utf8').includes('not-for-others'));
    expect(envs).toHaveLength(1);
    expect(mode(envs[0]!)).toBe(0o600);
    expect(mode(join(envs[0]!, '..'))).toBe(0o700);
    const generations = findAll(strataRoot, (p) => /\/generations\/\d+\.json$/.test(p));
    expect(generations.length).toBeGreaterThan(0);
    for (const g of generations) {
      expect(mode(g)).toBe(0o600);
      expect(mode(join(g, '..'))).toBe(0o700);
    }
    expect(loose(strataRoot)).toEqual([]);
  });

  it('a link put in place of a service\'s log (its STATE_DIR is the service\'s own) is not written through', async () => {
    const stateOfWorker = join(findAll(on('/var/lib/strata'), (p) => p.endsWith('/made-by-service'))[0]!, '..');
    unlinkSync(join(stateOfWorker, 'log'));
    symlinkSync('/tmp/sentinel/passwd', join(stateOfWorker, 'log'));
    edit('services.yaml', 'TOKEN: "not-for-others"', 'TOKEN: "still-not-for-others"');
    const r = await apply();
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    sentinelUntouched();
    expect(lstatSync(join(stateOfWorker, 'log')).isFile()).toBe(true);
    expect(readFileSync(join(stateOfWorker, 'log'), 'utf8')).toBe('started\n');
  });

  it('destroy removes a link found where a file was placed, never what it points to, and never deletes through a linked directory', async () => {
    renameSync(on('/tmp/allowed/site/conf'), on('/tmp/allowed/site/conf.moved'));
    symlinkSync('/tmp/sentinel', on('/tmp/allowed/site/conf'));
    unlinkSync(on('/tmp/allowed/site/index.html'));
    symlinkSync('/tmp/sentinel/keep', on('/tmp/allowed/site/index.html'));
    const r = await cli('destroy', root, '--state', stateDir);
    expect(r.code).toBe(0);
    sentinelUntouched();
    expect(lstatSafe(on('/tmp/allowed/site/index.html'))).toBeUndefined();
    expect(lstatSafe(on('/tmp/allowed/site/conf'))?.isSymbolicLink()).toBe(true);
    // The placed file, now only reachable through a path strata does not follow, is left.
    expect(readFileSync(on('/tmp/allowed/site/conf.moved/passwd'), 'utf8')).toBe('from the repository\n');
    expect(existsSync(on('/tmp/allowed/etc/app.conf'))).toBe(false);
    rmSync(on('/tmp/allowed/site'), { recursive: true });
  });

  it('refuses a symlinked directory on the way to a file service, a machine directory or a machine file, an allowed path that is a link, and strata\'s own root', async () => {
    symlinkSync('/tmp/sentinel', on('/tmp/allowed/deep'));
    symlinkSync('/tmp/sentinel', on('/tmp/allowed2'));
    const sentinelMode = mode(on('/tmp/sentinel'));
    const service = (path: string): [string, string, string] => ['services.yaml', 'path: /tmp/allowed/site', `path: ${path}`];
    const cases: { edits: [string, string, string][]; message: RegExp; link?: [string, string]; code?: number }[] = [
      // A link where a machine directory is to be made is refused (its target keeps its mode).
      { edits: [], link: ['/tmp/sentinel', '/tmp/allowed/made'], message: /refusing path "\/tmp\/allowed\/made": \/tmp\/allowed\/made is a symbolic link/ },
      // A link where a machine file is to be placed is refused too (not replaced, not written through).
      { edits: [], link: ['/tmp/sentinel/passwd', '/tmp/allowed/etc/app.conf'], message: /refusing path "\/tmp\/allowed\/etc\/app.conf": \/tmp\/allowed\/etc\/app.conf is a symbolic link/ },
      { edits: [service('/tmp/allowed/deep/site')], message: /refusing path "\/tmp\/allowed\/deep\/site": \/tmp\/allowed\/deep is a symbolic link/ },
      { edits: [['network.yaml', 'path: /tmp/allowed/made,', 'path: /tmp/allowed/deep/made,']], message: /refusing path "\/tmp\/allowed\/deep\/made": \/tmp\/allowed\/deep is a symbolic link/ },
      { edits: [['network.yaml', 'path: /tmp/allowed/etc/app.conf', 'path: /tmp/allowed/deep/app.conf']], message: /\/tmp\/allowed\/deep is a symbolic link/ },
      { edits: [service('/tmp/allowed2/site')], message: /refusing path "\/tmp\/allowed2\/site": the allowed path \/tmp\/allowed2 is a symbolic link/ },
      // An allowed path that holds the runtime root would open strata's own records to a tree
      // placed there: validation refuses it (exit 2, before any machine); the runtime refuses a
      // write inside its root too, as a second line.
      {
        edits: [
          ['network.yaml', 'allowedPaths: [/tmp/m2]', 'allowedPaths: [/tmp]'],
          ['services.yaml', 'services:\n', 'services:\n  planter:\n    type: file\n    artifact: planter\n    path: /tmp\n'],
          ['distribution.yaml', 'distribution:\n', 'distribution:\n  planter: m2\n'],
        ],
        code: 2,
        message: /machines\.m2\.allowedPaths\[0\]: "\/tmp" overlaps the runtime root \/tmp\/r2/,
      },
    ];
    for (const { edits, message, link, code } of cases) {
      for (const [file, from, to] of edits) edit(file, from, to);
      if (link) {
        mkdirSync(on(join(link[1], '..')), { recursive: true });
        symlinkSync(link[0], on(link[1]));
      }
      const r = await apply();
      expect(r.code, r.err).toBe(code ?? 1);
      expect(r.err).toMatch(message);
      expect(readdirSync(on('/tmp/sentinel')).sort()).toEqual(['keep', 'passwd']);
      sentinelUntouched();
      expect(mode(on('/tmp/sentinel'))).toBe(sentinelMode);
      for (const [file, from, to] of edits) edit(file, to, from);
      if (link) {
        expect(lstatSafe(on(link[1]))?.isSymbolicLink()).toBe(true);
        unlinkSync(on(link[1]));
      }
    }
    expect(existsSync(hostPath(net.hosts[1]!, '/tmp/r2/planted'))).toBe(false);
  });

  it('makes the records of a machine set up by an older runtime private on first contact', async () => {
    expect((await apply()).code).toBe(0);
    const strataRoot = on('/var/lib/strata');
    // As an older runtime left them: 0755 directories, 0644 files, and no marker.
    for (const e of records(strataRoot)) chmodSync(e.path, e.dir ? 0o755 : 0o644);
    for (const marker of findAll(strataRoot, (p) => p.endsWith('/.private-records'))) rmSync(marker);
    expect(records(strataRoot).filter((e) => e.mode === 0o644).length).toBeGreaterThan(3);
    const s = await cli('status', root, '--state', stateDir);
    expect(s.code).toBe(0);
    const items = findAll(strataRoot, (p) => p.endsWith('/env'));
    expect(items.length).toBeGreaterThan(0);
    for (const p of items) {
      expect(mode(p)).toBe(0o600);
      expect(mode(join(p, '..'))).toBe(0o700);
    }
    // The directories above a STATE_DIR can no longer be listed; the services' files keep their modes.
    expect(loose(strataRoot)).toEqual([]);
    expect(mode(findAll(strataRoot, (p) => p.endsWith('/made-by-service'))[0]!)).toBe(0o644);
  });

  it('a directory flipped to and from a link while files are placed and removed never lets a write or a removal through', async () => {
    edit('services.yaml', 'services:\n', 'services:\n  race:\n    type: file\n    artifact: race\n    path: /tmp/race/site\n');
    edit('distribution.yaml', 'distribution:\n', 'distribution:\n  race: m1\n');
    edit('network.yaml', '/tmp/allowed2]', '/tmp/allowed2, /tmp/race]');
    mkdirSync(on('/tmp/race/site/conf'), { recursive: true });
    // A sentinel holding files of the same names as the tree: a write or a removal through the
    // link would change it.
    const raceSentinel = on('/tmp/race-sentinel');
    mkdirSync(raceSentinel);
    const names = Object.keys(files).filter((n) => n.startsWith('race/conf/')).map((n) => n.slice('race/conf/'.length));
    for (const n of names) writeFileSync(join(raceSentinel, n), `sentinel ${n}\n`);
    const raceSentinelUntouched = () => {
      expect(readdirSync(raceSentinel).sort()).toEqual([...names].sort());
      for (const n of names) expect(readFileSync(join(raceSentinel, n), 'utf8')).toBe(`sentinel ${n}\n`);
    };
    // The flipper runs outside the host's namespace: its link is relative, so it leads to the
    // host's own sentinel from either side, and `mv -T` never moves into what a link names.
    // conf is a directory most of the time, a link for a few milliseconds of every 20.
    const script = 'exec 2>/dev/null; while :; do mv -T conf conf.d; ln -s ../../race-sentinel conf; sleep 0.003; rm -f conf; mv -T conf.d conf; sleep 0.01; done';
    // Its own process group, stopped as a whole: no mv of it may run after it is stopped.
    const flip = () => spawn('sh', ['-c', script], { cwd: on('/tmp/race/site'), stdio: 'ignore', detached: true });
    const stop = async (p: ReturnType<typeof flip>) => {
      const exited = once(p, 'exit');
      process.kill(-p.pid!, 'SIGKILL');
      await exited;
      const conf = lstatSafe(on('/tmp/race/site/conf'));
      if (conf?.isSymbolicLink()) unlinkSync(on('/tmp/race/site/conf'));
      if (existsSync(on('/tmp/race/site/conf.d'))) {
        rmSync(on('/tmp/race/site/conf'), { recursive: true, force: true });
        renameSync(on('/tmp/race/site/conf.d'), on('/tmp/race/site/conf'));
      }
      // When strata made conf again in the instant it was missing (between the flipper's rm and
      // its mv back), the flipper's next `ln -s … conf` made its link inside that directory: the
      // flipper's leftover, not strata's (the sentinel check shows nothing went through it).
      const inner = on('/tmp/race/site/conf/race-sentinel');
      if (lstatSafe(inner)?.isSymbolicLink()) unlinkSync(inner);
    };
    const flipper = flip();
    const r = await apply();
    await stop(flipper);
    // Placed, or refused because the walk caught the flip: either way nothing reached the sentinel.
    raceSentinelUntouched();
    expect([0, 1]).toContain(r.code);
    if (r.code === 1) expect(r.err).toMatch(/refusing path "\/tmp\/race\/site\/conf\/f\d+": /);
    if (r.code === 1) {
      // Refused: with the flipper stopped, it is placed. (Placed under the flips, its files
      // are wherever the flipper moved their directory to, inside the allowed path.)
      expect((await apply()).code).toBe(0);
      expect(readdirSync(on('/tmp/race/site/conf'))).toHaveLength(80);
    }
    const remover = flip();
    edit('distribution.yaml', '  race: m1\n', '');
    const d = await apply();
    await stop(remover);
    expect(d.code).toBe(0);
    raceSentinelUntouched();
  });
});

describe('the runtime strata installs', () => {
  it('is writable by its owner only, whatever umask the session has; an older install is fixed on first contact', async () => {
    const base = mkdtempSync(join(tmpdir(), 'strata-writes-umask-'));
    const old = process.umask(0o000); // commands inherit it, as from a permissive SSH session
    try {
      for (const [name, fresh] of [['fresh', true], ['installed', false]] as const) {
        const root = join(base, name, 'root');
        const rt = new ShellMachineRuntime(new LocalTarget('m1'), root, '127.0.43.9', 'writes');
        if (fresh) rt.expectFresh();
        await rt.lock('erin:1:e');
        await rt.unlock('erin:1:e');
        for (const p of [root, join(root, 'runtime'), runtimePath(root)]) expect(mode(p) & 0o022, p).toBe(0);
        // As an older strata left it: loose, and no marker yet.
        for (const p of [root, join(root, 'runtime'), runtimePath(root)]) chmodSync(p, 0o777);
        rmSync(join(root, 'deployments', 'writes', '.private-records'));
        await rt.status();
        for (const p of [root, join(root, 'runtime'), runtimePath(root)]) expect(mode(p) & 0o022, p).toBe(0);
      }
    } finally {
      process.umask(old);
      rmSync(base, { recursive: true, force: true });
    }
  });
});
