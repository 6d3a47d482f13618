import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../../src/errors.ts';
import type { Item } from '../../src/manifest/types.ts';
import { type Testnet, hostPath, testnetDown, testnetUp } from '../../src/testnet/index.ts';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { runtimeScript } from '../../src/targets/runtime/script.ts';
import { SshTarget } from '../../src/targets/ssh.ts';
import { cli } from '../support/cli.ts';
import { ControllerApi, condition, jsonLines, until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { spawnStrata } from '../support/strataProcess.ts';

// A machine that answers what it likes, on a real sshd host (subnet 127.0.50): its installed
// runtime (ROOT/runtime/HASH.sh) is replaced by a script that answers one verb with garbage,
// an endless stream, terminal escapes or a stderr flood, and hands every other verb to the real
// runtime. strata must fail with an error that names the machine and the verb, exit promptly
// with its memory bounded, and print nothing of the machine's raw.
const SUBNET = '127.0.50';
const ROOT = '/var/lib/strata';
let work: string;
let net: Testnet;
let stateDir: string;
const host = (name: string) => net.hosts.find((h) => h.name === name)!;
const app = () => host('app');
const runtimeFile = (on = 'app') => hostPath(host(on), `${ROOT}/runtime/${runtimeScript().hash}.sh`);
const root = () => join(work, 'strata.yaml');
const RAW_ESCAPE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** Makes the machine (`app`, or `on`) answer VERB with the shell `body` (run as the runtime: $1 ROOT, $2 VERB). */
function hostile(verb: string, body: string, on = 'app'): void {
  writeFileSync(runtimeFile(on), `case $2 in\n  ${verb}) ${body} ;;\n  *) exec sh ${ROOT}/runtime/real.sh "$@" ;;\nesac\n`);
}

/** The real CLI as a child process with its peak resident memory sampled; killed after `ms`. */
async function strataChild(args: string[], env: NodeJS.ProcessEnv = {}, ms = 30_000): Promise<{ code: number | null; out: string; err: string; elapsedMs: number; peakRssMiB: number }> {
  const p = spawnStrata([...args, '--state', stateDir], { env: { ...process.env, ...env } });
  let peak = 0;
  const sample = setInterval(() => {
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peak = Math.max(peak, kb / 1024);
    } catch {
      // It exited between two samples.
    }
  }, 20);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), ms);
  const { code } = await p.exited;
  clearTimeout(timer);
  clearInterval(sample);
  return { code, out: p.stdout(), err: p.stderr(), elapsedMs: Date.now() - p.t0, peakRssMiB: peak };
}

function runtimeOverSsh(): ShellMachineRuntime {
  const h = app();
  const target = new SshTarget({ machine: 'app', host: h.address, port: h.port, user: 'root', hostKey: h.hostKey, identity: net.identityFile, commandTimeoutMs: 20_000 });
  return new ShellMachineRuntime(target, ROOT, h.address, 'hostile');
}

async function refusal(p: Promise<unknown>): Promise<StrataError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StrataError);
  return e as StrataError;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-hostile-'));
  stateDir = join(work, 'state');
  net = await testnetUp({ dir: join(work, 'net'), machines: ['app', 'ctl'], subnet: SUBNET });
  mkdirSync(join(work, 'services/notes'), { recursive: true });
  copyFileSync(new URL('../fixtures/stateful/services/notes/notes.sh', import.meta.url), join(work, 'services/notes/notes.sh'));
  writeFileSync(join(work, 'network.yaml'), `machines:\n  app:\n    address: ${app().address}\n    ssh: { identity: ${net.identityFile}, hostKey: "${app().hostKey}" }\n`);
  writeFileSync(join(work, 'services.yaml'), 'services:\n  notes:\n    type: process\n    artifact: services/notes\n    start: sh notes.sh\n    stateful: true\n');
  writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  notes: app\n');
  writeFileSync(root(), 'name: hostile\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
  const r = await cli('apply', root(), '--state', stateDir, '-q');
  if (r.code !== 0) throw new Error(`apply failed: ${r.err}`);
  copyFileSync(runtimeFile(), hostPath(app(), `${ROOT}/runtime/real.sh`));
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => copyFileSync(hostPath(app(), `${ROOT}/runtime/real.sh`), runtimeFile()));

describe('a machine that answers what it likes', () => {
  it('answers status normally while its runtime is the real one', async () => {
    const r = await strataChild(['status', root()]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('a STRATA_MAX_SNAPSHOT_BYTES that is not a number of bytes: exit 2 before any machine is contacted', async () => {
    const logins = () => (readFileSync(join(app().dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
    const before = logins();
    const r = await strataChild(['status', root()], { STRATA_MAX_SNAPSHOT_BYTES: '2G' });
    expect(r.code).toBe(2);
    expect(r.err).toBe('strata: STRATA_MAX_SNAPSHOT_BYTES="2G" is not a whole number of bytes (at least 1)\n');
    expect(logins()).toBe(before);
  });

  it('garbage with terminal escapes in status: a clear error naming the machine and the line, escaped', async () => {
    hostile('status', `printf 'generation 1\\nlock none\\n\\033[2J\\033]0;pwned\\007 hello\\n'`);
    const r = await strataChild(['status', root()]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('app answered status with something strata does not understand (line 3): unknown line "\\x1b[2J\\x1b]0;pwned\\x07 hello"');
    expect(r.out + r.err).not.toMatch(RAW_ESCAPE);
    expect(r.out + r.err).not.toMatch(/internal error|TypeError/);
  });

  it('an endless stdout: stopped at the bound, the CLI exits promptly with its memory bounded', async () => {
    hostile('status', 'exec yes "generation 1"');
    const r = await strataChild(['status', root()]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('app sent more than 4 MiB on stdout for status: the command was stopped');
    expect(r.elapsedMs).toBeLessThan(15_000);
    expect(r.peakRssMiB).toBeGreaterThan(0);
    // The CLI alone is about 100 MiB; an unbounded read of `yes` would grow by ~100 MiB a second.
    expect(r.peakRssMiB).toBeLessThan(200);
  });

  it('a stderr flood of escapes: stopped at the bound', async () => {
    hostile('status', `exec yes "$(printf '\\033[31mflood')" >&2`);
    const r = await strataChild(['status', root()]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('app sent more than 1 MiB on stderr for status');
    expect(r.out + r.err).not.toMatch(RAW_ESCAPE);
  });

  it('a failure whose reason holds terminal escapes: the reason is shown escaped', async () => {
    hostile('status', `printf '\\033]0;owned\\007\\033[2Jno\\rway\\n' >&2; exit 1`);
    const r = await strataChild(['status', root()]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('app: cannot read status: \\x1b]0;owned\\x07\\x1b[2Jno\\x0dway');
    expect(r.out + r.err).not.toMatch(RAW_ESCAPE);
  });

  it('a garbled lock answer: apply fails with the machine and the verb named, touching nothing', async () => {
    const journal = readFileSync(hostPath(app(), `${ROOT}/deployments/hostile/state/s.notes/journal`), 'utf8');
    hostile('lock', `printf 'held who knows\\n'; exit 75`);
    writeFileSync(join(work, 'services/notes/notes.sh'), `${readFileSync(join(work, 'services/notes/notes.sh'), 'utf8')}# changed\n`);
    const r = await strataChild(['apply', root()]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('app answered lock with something strata does not understand (line 1): 2 fields where a lock has 6');
    expect(r.err).not.toMatch(/internal error|TypeError/);
    expect(readFileSync(hostPath(app(), `${ROOT}/deployments/hostile/state/s.notes/journal`), 'utf8')).toBe(journal);
  });

  it('an endless snapshot: cut off at the configured bound, nothing kept in the state directory', async () => {
    hostile('snapshot', 'exec cat /dev/zero');
    const r = await strataChild(['snapshot', root(), '--service', 'notes'], { STRATA_MAX_SNAPSHOT_BYTES: String(8 * 1024 ** 2) });
    expect(r.code).toBe(1);
    expect(r.err).toContain('app sent more than 8 MiB on stdout for snapshot: the command was stopped');
    const dir = join(stateDir, 'snapshots/hostile/notes');
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('a large snapshot is streamed to its file: the controller does not hold it in memory', { timeout: 90_000 }, async () => {
    const size = 300 * 1024 ** 2;
    hostile('snapshot', `exec head -c ${size} /dev/zero`);
    const r = await strataChild(['snapshot', root(), '--service', 'notes'], {}, 60_000);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const dir = join(stateDir, 'snapshots/hostile/notes');
    const snap = readdirSync(dir).filter((f) => f.endsWith('.snap'));
    expect(snap).toHaveLength(1);
    expect(statSync(join(dir, snap[0]!)).size).toBe(size);
    expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
    // Held in memory, 300 MiB would be on top of the CLI's own ~100 MiB.
    expect(r.peakRssMiB).toBeGreaterThan(0);
    expect(r.peakRssMiB).toBeLessThan(200);
  });
});

describe('a snapshot taken by a transition', () => {
  it('an endless one fails the transition before the service is touched, and keeps nothing', async () => {
    const journal = () => readFileSync(hostPath(app(), `${ROOT}/deployments/hostile/state/s.notes/journal`), 'utf8');
    const before = journal();
    const dir = join(stateDir, 'snapshots/hostile/notes');
    const kept = existsSync(dir) ? readdirSync(dir).sort() : [];
    // Removing the stateful service snapshots it first (then deactivates it).
    writeFileSync(join(work, 'services.yaml'), 'services:\n  other:\n    type: process\n    artifact: services/notes\n    start: sh notes.sh\n');
    writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  other: app\n');
    try {
      hostile('snapshot', 'exec cat /dev/zero');
      const r = await strataChild(['apply', root()], { STRATA_MAX_SNAPSHOT_BYTES: String(1024 ** 2) });
      expect(r.code).toBe(1);
      expect(r.err).toContain('app sent more than 1 MiB on stdout for snapshot');
      expect(r.err).not.toMatch(/internal error|TypeError/);
      expect(readdirSync(dir).sort()).toEqual(kept);
      // notes was never deactivated: it still runs, and was not started again.
      const status = await strataChild(['status', root()]);
      expect(status.out).toMatch(/notes.*running/);
      expect(journal()).toBe(before);
    } finally {
      writeFileSync(join(work, 'services.yaml'), 'services:\n  notes:\n    type: process\n    artifact: services/notes\n    start: sh notes.sh\n    stateful: true\n');
      writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  notes: app\n');
    }
  });
});

describe('the runtime of a hostile machine, over SSH', () => {
  const notes = (): Item => ({ key: 's.notes', machine: 'app', layer: 'service', name: 'notes', module: 'process', spec: { start: 'sh notes.sh', env: {} }, dependsOn: [], stateful: true, hash: 'x' });

  it('a generation record that is not one is MACHINE_ANSWER_INVALID, never a SyntaxError', async () => {
    const rt = runtimeOverSsh();
    try {
      expect((await rt.recorded())?.deployment).toBe('hostile');
      hostile('manifest', `printf '{"deployment":"hostile","generation":"1"'`);
      const e = await refusal(rt.recorded());
      expect(e.code).toBe('MACHINE_ANSWER_INVALID');
      expect(e.message).toMatch(/^app answered manifest with something strata does not understand: the generation record is not JSON/);
      hostile('manifest', `printf '{"deployment":"hostile","generation":1,"manifestHash":"h","machine":{"name":"app","address":"a","target":{"kind":"local"},"items":[{"key":"../../etc"}]}}'`);
      expect((await refusal(rt.recorded())).message).toMatch(/is not a MachineRecord: machine\.items\.0\.key: /);
      hostile('manifest', 'exec yes "{"');
      const big = await refusal(rt.recorded());
      expect(big.code).toBe('MACHINE_ANSWER_TOO_LARGE');
      expect(big.data).toMatchObject({ machine: 'app', verb: 'manifest', stream: 'stdout' });
    } finally {
      await rt.target.close();
    }
  });

  it('an activation answer framed longer than what follows is refused for every item of the batch', async () => {
    const rt = runtimeOverSsh();
    try {
      hostile('activate', `cat >/dev/null; printf 'failed s.notes 999999\\nshort'`);
      const e = await refusal(rt.activate(notes()));
      expect(e.code).toBe('MACHINE_ANSWER_INVALID');
      expect(e.message).toContain('app answered activate with something strata does not understand (line 1): a reason of 999999 bytes where 5 follow');
    } finally {
      await rt.target.close();
    }
  });
});

describe('an honest machine again', () => {
  it('a transition that removes the stateful service streams its snapshot into the state directory', async () => {
    const dir = join(stateDir, 'snapshots/hostile/notes');
    const before = readdirSync(dir).filter((f) => f.endsWith('.snap'));
    writeFileSync(join(work, 'services.yaml'), 'services:\n  other:\n    type: process\n    artifact: services/notes\n    start: sh notes.sh\n');
    writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  other: app\n');
    const r = await strataChild(['apply', root()]);
    expect(r.err).toMatch(/snapshot of notes on app \(.*\) stored in .*\.snap/);
    expect(r.code).toBe(0);
    const added = readdirSync(dir).filter((f) => f.endsWith('.snap') && !before.includes(f));
    expect(added).toHaveLength(1);
    expect(readFileSync(join(dir, added[0]!), 'latin1')).toMatch(/F \d+ 6\d\d journal\nstarted on app\n[^]*Z\n$/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
  });
});

describe('a real controller probing a hostile machine', () => {
  const PORT = 18500;
  /** Peak resident memory of a process so far, sampled by the caller. */
  const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

  it('keeps serving: an endless or garbled status is a probe failure naming the machine, logged escaped', { timeout: 120_000 }, async () => {
    const ctl = host('ctl');
    const repo = WorkRepo.init(join(work, 'ctl-repo'));
    const commit = repo.commit('deploy', {
      'strata.yaml': 'name: hostile-ctl\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n',
      'network.yaml': `machines:\n  ctl:\n    address: ${ctl.address}\n    ssh: { hostKey: "${ctl.hostKey}", identity: "${net.identityFile}" }\n`,
      'services.yaml': 'services:\n  ticker:\n    type: process\n    artifact: services/ticker\n    start: sh notes.sh\n',
      'services/ticker/notes.sh': readFileSync(new URL('../fixtures/stateful/services/notes/notes.sh', import.meta.url), 'utf8'),
      'distribution.yaml': 'distribution:\n  ticker: ctl\n',
    });
    const config = join(work, 'controller.yaml');
    writeFileSync(
      config,
      `stateDir: ${JSON.stringify(join(work, 'controller-state'))}\nlisten: 127.0.0.1:${PORT}\nlogLevel: info\ndeployments:\n  - name: hostile-ctl\n    repository: { url: ${JSON.stringify(repo.dir)}, branch: main, interval: 1s }\n    interval: 10m\n    probeInterval: 1s\n    ssh: { allowedFiles: [${JSON.stringify(dirname(net.identityFile))}] }\n`,
    );
    const controller = spawnStrata(['controller', '--config', config]);
    let peak = 0;
    const sample = setInterval(() => {
      try {
        peak = Math.max(peak, rssMiB(controller.child.pid!));
      } catch {
        // exited
      }
    }, 20);
    try {
      const api = new ControllerApi(`http://127.0.0.1:${PORT}`);
      await until(async () => (await api.status('hostile-ctl')).lastAppliedRevision === commit, 60_000, 'the controller to deploy');
      const logged = (pattern: string) => jsonLines(controller.stdout()).some((l) => String(l.msg).includes(pattern));

      hostile('status', 'exec yes "generation 1"', 'ctl');
      await until(() => logged('probe: ctl is unreachable: ctl sent more than 4 MiB on stdout for status'), 30_000, 'the endless status to be cut off');
      hostile('status', `printf 'generation 1\\nlock none\\n\\033]0;pwned\\007\\033[2J\\n'`, 'ctl');
      await until(() => logged('ctl answered status with something strata does not understand (line 3): unknown line "\\x1b]0;pwned\\x07\\x1b[2J"'), 30_000, 'the garbled status to be refused');
      const s = await api.status('hostile-ctl');
      expect(s.drift?.unreachable).toEqual(['ctl']);
      expect(condition(s, 'Ready')).toBeDefined();
      expect((await api.request('GET', '/healthz')).status).toBe(200);
      expect(controller.done()).toBe(false);
      // The machine's bytes reach neither the log nor the API raw.
      expect(controller.stdout() + controller.stderr()).not.toMatch(RAW_ESCAPE);
      expect(JSON.stringify(s)).not.toMatch(/\\u001b/);
      // A garbled lock answer fails the reconcile with its own reason; the controller goes on.
      hostile('lock', `printf 'held x\\n'; exit 75`, 'ctl');
      const next = repo.commit('upgrade', { 'services/ticker/notes.sh': `${readFileSync(join(repo.dir, 'services/ticker/notes.sh'), 'utf8')}# 2\n` });
      const failed = await until(async () => {
        const f = (await api.status('hostile-ctl')).lastFailure;
        return f?.revision === next ? f : undefined;
      }, 30_000, 'the reconcile to fail');
      expect(failed.reason).toBe('MachineAnswerInvalid');
      expect(failed.message).toContain('ctl answered lock with something strata does not understand (line 1): 1 field where a lock has 6');
      expect((await api.request('GET', '/healthz')).status).toBe(200);
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThan(300);
    } finally {
      clearInterval(sample);
      controller.child.kill('SIGTERM');
      await controller.exited;
    }
  });
});
