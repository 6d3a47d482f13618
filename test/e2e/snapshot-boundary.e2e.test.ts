import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarOf } from '../../src/state/snapshots.ts';
import { hostPath, testnetDown, testnetUp, type Testnet } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';
import { spawnStrata } from '../support/strataProcess.ts';

// The trust boundary of `strata snapshot` and `strata restore` on a real sshd host (subnet
// 127.0.48): names from the command line never become paths, `restore --from` reads nothing but
// a regular file that matches its sidecar (checked in a child process, so a read that blocks
// shows as a time-out instead of hanging the test run), and a host key that changes after
// trust on first use is refused with the state directory's known_hosts named.
const SUBNET = '127.0.48';
let work: string;
let net: Testnet | undefined;
let stateDir: string;
let realState: string;
const root = () => join(work, 'strata.yaml');
const app = () => net!.hosts.find((h) => h.name === 'app')!;
const onApp = (p: string) => hostPath(app(), p);
const journal = () => readFileSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/journal'), 'utf8');

/** The client key stays at one path across test networks: the recorded generation names it. */
const identity = () => join(work, 'client_key');
async function bringUp(dir: string): Promise<void> {
  net = await testnetUp({ dir: join(work, dir), machines: ['app'], subnet: SUBNET });
  copyFileSync(net.identityFile, identity());
  chmodSync(identity(), 0o600);
}

function writeNetwork(ssh: string, knownHosts = join(work, 'empty_known_hosts')): void {
  writeFileSync(join(work, 'network.yaml'), `machines:\n  app:\n    address: ${app().address}\n    ssh: { identity: ${identity()}, knownHosts: ${knownHosts}${ssh} }\n`);
}

/** An apply that must reach the machine: the artifact changes each time, so the service is upgraded. */
let edits = 0;
function applyChanged(): ReturnType<typeof cli> {
  writeFileSync(join(work, 'services/notes/notes.sh'), `${readFileSync(join(work, 'services/notes/notes.sh'), 'utf8')}# edit ${++edits}\n`);
  return cli('apply', root(), '--state', stateDir);
}

/** The real CLI as a child process, killed if it runs longer than `ms`: a hang fails the test, never the run. */
async function strataChild(args: string[], ms = 20_000): Promise<{ code: number | null; err: string; elapsedMs: number; killed: boolean }> {
  const p = spawnStrata([...args, '--state', stateDir]);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    p.child.kill('SIGKILL');
  }, ms);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, err: p.stderr(), elapsedMs: Date.now() - p.t0, killed };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-snapshot-boundary-'));
  // The state directory is reached through a symlink: messages must name the real files.
  mkdirSync(join(work, 'state-real'));
  symlinkSync(join(work, 'state-real'), join(work, 'state'));
  stateDir = join(work, 'state');
  realState = realpathSync(stateDir);
  await bringUp('net1');
  mkdirSync(join(work, 'services/notes'), { recursive: true });
  copyFileSync(new URL('../fixtures/stateful/services/notes/notes.sh', import.meta.url), join(work, 'services/notes/notes.sh'));
  writeFileSync(join(work, 'empty_known_hosts'), '');
  writeNetwork(', trustOnFirstUse: true');
  writeFileSync(join(work, 'services.yaml'), 'services:\n  notes:\n    type: process\n    artifact: services/notes\n    start: sh notes.sh\n    stateful: true\n');
  writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  notes: app\n');
  writeFileSync(root(), 'name: boundary\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
  const r = await cli('apply', root(), '--state', stateDir, '-q');
  if (r.code !== 0) throw new Error(`apply failed: ${r.err}`);
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

describe('snapshot and restore on a real SSH host', () => {
  let snap = '';

  it('refuses every name option that is not a model name, with exit 2, before using it', async () => {
    const bad = ['snp/../snp', '../boundary', '/etc', '..', '.', '', 'a\u0000b', 'a\nb', 'a\u001b[31m', 'x'.repeat(64), 'boundary/', '\\..\\x'];
    const commands: [string, string[]][] = [
      ['snapshot', ['--service', 'notes']],
      ['restore', ['--service', 'notes', '--yes']],
      ['history', []],
      ['status', []],
      ['destroy', []],
      ['repair', []],
      ['rollback', []],
    ];
    for (const value of bad) {
      for (const [command, rest] of commands) {
        const r = await cli(command, root(), '--state', stateDir, ...rest, '--deployment', value);
        expect(r.code, `${command} --deployment ${JSON.stringify(value)}`).toBe(2);
        expect(r.err).toMatch(/^strata: --deployment ".*" is not a valid name: it .*; a name is a letter, then letters, digits, "-" or "_" \(at most 63 characters\)\n$/);
        expect(r.err).not.toMatch(/[\u0000\u001b]/);
      }
      for (const command of ['snapshot', 'restore']) {
        for (const flag of ['--service', '--machine']) {
          const args = flag === '--service' ? ['--service', value] : ['--service', 'notes', '--machine', value];
          const r = await cli(command, root(), '--state', stateDir, ...args, ...(command === 'restore' ? ['--yes'] : []));
          expect(r.code, `${command} ${flag} ${JSON.stringify(value)}`).toBe(2);
          expect(r.err).toContain(`strata: ${flag} "`);
          expect(r.err).toMatch(/is not a valid name: /);
        }
      }
    }
    const r = await cli('rollback', '--controller', 'http://127.0.0.1:18480', '--deployment', 'snp/../snp', '--token-file', '/dev/null');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--deployment "snp\/..\/snp" is not a valid name: it contains a path separator/);
    expect(r.err).toBe('strata: --deployment "snp/../snp" is not a valid name: it contains a path separator; a name is a letter, then letters, digits, "-" or "_" (at most 63 characters)\n');
    // Nothing was written for any of them: only the applied deployment is in the state directory.
    expect(readdirSync(join(realState, 'deployments'))).toEqual(['boundary']);
    expect(existsSync(join(realState, 'snapshots'))).toBe(false);
    expect(journal()).toBe('started on app\n');
  });

  it('strata snapshot stores the STATE_DIR with its sidecar; a good snapshot is restored over SSH', async () => {
    mkdirSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/data'), { recursive: true });
    writeFileSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/data/keep'), 'precious\n');
    const taken = await cli('snapshot', root(), '--state', stateDir, '--service', 'notes');
    expect(taken.err).toBe('');
    expect(taken.code).toBe(0);
    snap = /stored in (\S+\.snap)/.exec(taken.out)![1]!;
    expect(JSON.parse(readFileSync(sidecarOf(snap), 'utf8'))).toMatchObject({ format: 'strata-snapshot/1', deployment: 'boundary', service: 'notes', machine: 'app', reason: 'manual' });

    writeFileSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/data/keep'), 'overwritten\n');
    const r = await strataChild(['restore', root(), '--service', 'notes', '--from', snap, '--yes']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(readFileSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/data/keep'), 'utf8')).toBe('precious\n');
    expect(journal()).toBe('started on app\nstarted on app\n');
  });

  it('restore --from refuses anything but a regular file that matches its sidecar, at once, touching nothing', async () => {
    const bad = join(work, 'bad');
    mkdirSync(bad);
    execFileSync('mkfifo', [join(bad, 'fifo.snap')]);
    symlinkSync('/dev/zero', join(bad, 'zero.snap'));
    mkdirSync(join(bad, 'dir.snap'));
    // A copy whose sidecar is a FIFO: reading it must not block either.
    copyFileSync(snap, join(bad, 'fifo-sidecar.snap'));
    execFileSync('mkfifo', [join(bad, 'fifo-sidecar.json')]);
    // A truncated copy, a copy with one byte changed, and one without a sidecar.
    for (const name of ['truncated', 'changed', 'alone']) copyFileSync(snap, join(bad, `${name}.snap`));
    for (const name of ['truncated', 'changed']) copyFileSync(sidecarOf(snap), join(bad, `${name}.json`));
    const size = readFileSync(snap).length;
    truncateSync(join(bad, 'truncated.snap'), Math.floor(size / 2));
    const changed = readFileSync(snap);
    changed[changed.length - 1] = changed[changed.length - 1]! ^ 1;
    writeFileSync(join(bad, 'changed.snap'), changed);
    // A sidecar that names another service.
    copyFileSync(snap, join(bad, 'other.snap'));
    writeFileSync(join(bad, 'other.json'), readFileSync(sidecarOf(snap), 'utf8').replace('"service": "notes"', '"service": "other"'));

    // Those that could block or never end a naive read run in a child process with a time-out.
    const blocking: [string, RegExp][] = [
      ['/dev/zero', /the snapshot \/dev\/zero is a character device, not a regular file; refusing to restore it/],
      [join(bad, 'fifo.snap'), /fifo\.snap is a FIFO \(named pipe\), not a regular file/],
      [join(bad, 'zero.snap'), /zero\.snap is a symlink to \/dev\/zero, a character device, not a regular file/],
      [join(bad, 'fifo-sidecar.snap'), /the sidecar .*fifo-sidecar\.json of the snapshot .* is a FIFO/],
    ];
    const others: [string, RegExp][] = [
      [join(bad, 'dir.snap'), /dir\.snap is a directory, not a regular file/],
      [join(bad, 'truncated.snap'), new RegExp(`truncated\\.snap is ${Math.floor(size / 2)} bytes but its sidecar .*truncated\\.json records ${size}: it was truncated`)],
      [join(bad, 'changed.snap'), /changed\.snap does not match its sidecar .*changed\.json \(sha256 [0-9a-f]{12}, recorded [0-9a-f]{12}\); refusing to restore it/],
      [join(bad, 'alone.snap'), /the sidecar .*alone\.json of the snapshot .*alone\.snap does not exist; a snapshot is restored only when its size and sha256 match its sidecar/],
      [join(bad, 'none.snap'), /the snapshot .*none\.snap does not exist/],
      [join(bad, 'other.snap'), /is a snapshot of the service other \(its sidecar says so\), not of notes/],
    ];
    writeFileSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/data/keep'), 'current\n');
    for (let i = 0; i < blocking.length; i += 2) {
      const batch = blocking.slice(i, i + 2);
      const runs = await Promise.all(batch.map(([file]) => strataChild(['restore', root(), '--service', 'notes', '--from', file, '--yes'], 60_000)));
      runs.forEach((r, j) => {
        const [file, why] = batch[j]!;
        expect(r.killed, `${file} hung`).toBe(false);
        expect(r.code, `${file}: ${r.err}`).toBe(2);
        expect(r.err).toMatch(why);
      });
    }
    for (const [file, why] of others) {
      const r = await cli('restore', root(), '--state', stateDir, '--service', 'notes', '--from', file, '--yes');
      expect(r.code, `${file}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(why);
      expect(r.err).not.toMatch(/internal error/);
    }
    // Nothing reached the machine: the data is as it was and the service was not restarted.
    expect(readFileSync(onApp('/var/lib/strata/deployments/boundary/state/s.notes/data/keep'), 'utf8')).toBe('current\n');
    expect(journal()).toBe('started on app\nstarted on app\n');
  });

  it('every other option that names a file takes only a regular file: a FIFO or /dev/zero never hangs', async () => {
    const fifo = join(work, 'bad', 'input.json');
    execFileSync('mkfifo', [fifo]);
    symlinkSync('/dev/zero', join(work, 'bad', 'zero-plan.json'));
    const runs = await Promise.all([
      strataChild(['apply', fifo], 60_000),
      strataChild(['rollback', '--controller', 'http://127.0.0.1:18480', '--deployment', 'boundary', '--token-file', '/dev/zero'], 60_000),
    ]);
    const more = await Promise.all([strataChild(['apply', join(work, 'bad', 'zero-plan.json')], 60_000), strataChild(['testnet', 'up', join(work, 'unused'), '--network', fifo], 60_000)]);
    const expected = [
      /cannot read the plan .*input\.json: it is a FIFO \(named pipe\), not a regular file/,
      /--token-file: cannot read \/dev\/zero: it is a character device, not a regular file/,
      /cannot read the plan .*zero-plan\.json: it is a symlink to \/dev\/zero, a character device, not a regular file/,
      /cannot read the network file .*input\.json: it is a FIFO \(named pipe\), not a regular file/,
    ];
    [...runs, ...more].forEach((r, i) => {
      expect(r.killed, String(expected[i])).toBe(false);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(expected[i]!);
    });
    expect(existsSync(join(work, 'unused'))).toBe(false);

    // A plan is saved only as a regular file: never written into a FIFO, a device or through a symlink.
    const out = await strataChild(['plan', root(), '--out', fifo], 60_000);
    expect(out.killed).toBe(false);
    expect(out.code, out.err).toBe(2);
    expect(out.err).toMatch(/--out .*input\.json is a FIFO \(named pipe\); name a regular file or a new one/);
    symlinkSync(join(work, 'bad', 'target.json'), join(work, 'bad', 'link.json'));
    const link = await cli('plan', root(), '--state', stateDir, '--out', join(work, 'bad', 'link.json'));
    expect(link.code).toBe(2);
    expect(link.err).toMatch(/link\.json is a symlink; name a regular file/);
    expect(existsSync(join(work, 'bad', 'target.json'))).toBe(false);
    const saved = await cli('plan', root(), '--state', stateDir, '--out', join(work, 'plan.json'), '-q');
    expect(saved.code, saved.err).toBe(0);
    expect(JSON.parse(readFileSync(join(work, 'plan.json'), 'utf8')).format).toBe('strata-plan/2');
  });

  it('after trust on first use, a changed host key is refused naming the pinned known_hosts; removing the line as told accepts the new key', async () => {
    const pinned = join(realState, 'known_hosts');
    const oldKey = app().hostKey;
    expect(readFileSync(pinned, 'utf8')).toBe(`${app().address} ${oldKey}\n`);
    // The machine is reinstalled: same address, a new host key (and a new client key).
    await testnetDown(net!.dir);
    net = undefined;
    await bringUp('net2');
    expect(app().hostKey).not.toBe(oldKey);

    // strata snapshot connects with the recorded generation's settings: trust on first use.
    const r = await cli('snapshot', root(), '--state', stateDir, '--service', 'notes');
    expect(r.code).toBe(1);
    const fp = execFileSync('ssh-keygen', ['-lf', '-'], { input: app().hostKey }).toString().split(' ')[1]!;
    expect(fp).toMatch(/^SHA256:/);
    expect(r.err).toContain(`host key of app (${app().address}:22), ${fp}, does not match the key pinned for ${app().address} by trust on first use in ${pinned}; refusing to connect`);
    const advice = /\((ssh-keygen -R \S+ -f \S+)\) and run again: the next connection pins the key it presents/.exec(r.err);
    expect(advice, r.err).not.toBeNull();
    expect(readFileSync(pinned, 'utf8')).toBe(`${app().address} ${oldKey}\n`);

    // The key in the model wins over the pinned file, and a refusal then names the model field…
    writeNetwork(`, hostKey: "${oldKey}"`);
    const model = await applyChanged();
    expect(model.code).toBe(1);
    expect(model.err).toMatch(/does not match ssh\.hostKey of machine app in the network model; refusing to connect/);
    // …or the known_hosts file the model names.
    writeFileSync(join(work, 'model_known_hosts'), `${app().address} ${oldKey}\n`);
    writeNetwork('', join(work, 'model_known_hosts'));
    const kh = await applyChanged();
    expect(kh.code).toBe(1);
    expect(kh.err).toContain(`the known_hosts entry for ${app().address} in ${realpathSync(join(work, 'model_known_hosts'))} (ssh.knownHosts of machine app)`);

    // A known_hosts named by the model that is a FIFO or a device is refused at once, not read.
    for (const file of [join(work, 'bad', 'input.json'), '/dev/zero']) {
      writeNetwork('', file);
      writeFileSync(join(work, 'services/notes/notes.sh'), `${readFileSync(join(work, 'services/notes/notes.sh'), 'utf8')}# edit ${++edits}\n`);
      const r = await strataChild(['apply', root()], 60_000);
      expect(r.killed, `${file} hung`).toBe(false);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(/the known_hosts file \S+ is a (FIFO \(named pipe\)|character device), not a regular file/);
    }

    // So is an identity file that is a FIFO or a device.
    for (const file of [join(work, 'bad', 'input.json'), '/dev/zero']) {
      writeNetwork(', trustOnFirstUse: true');
      writeFileSync(join(work, 'network.yaml'), readFileSync(join(work, 'network.yaml'), 'utf8').replace(`identity: ${identity()}`, `identity: ${file}`));
      writeFileSync(join(work, 'services/notes/notes.sh'), `${readFileSync(join(work, 'services/notes/notes.sh'), 'utf8')}# edit ${++edits}\n`);
      const r = await strataChild(['apply', root()], 60_000);
      expect(r.killed, `${file} hung`).toBe(false);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(/cannot read the SSH identity file \S+ for app: it is a (FIFO \(named pipe\)|character device), not a regular file/);
    }

    // Following the advice (the command, as printed) accepts the new key deliberately.
    writeNetwork(', trustOnFirstUse: true');
    const [, ...args] = advice![1]!.split(' ');
    execFileSync('ssh-keygen', args, { stdio: 'ignore' });
    const status = await cli('status', root(), '--state', stateDir, '--json');
    expect(JSON.parse(status.out).machines[0]).toMatchObject({ machine: 'app', reachable: true });
    expect(readFileSync(pinned, 'utf8')).toBe(`${app().address} ${app().hostKey}\n`);
  });
});
