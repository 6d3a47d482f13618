import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findClaimConflicts } from '../../src/apply/claims.ts';
import type { Item, MachineManifest } from '../../src/manifest/types.ts';
import { itemSpecFiles } from '../../src/targets/itemSpec.ts';
import { LocalTarget } from '../../src/targets/local.ts';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { runtimePath } from '../../src/targets/runtime/script.ts';
import { encodeActivation, encodeSpec } from '../../src/targets/stream.ts';

// The runtime's deployment directories on one machine (a local target: the real runtime and
// real files), and the upgrade from the single layout an earlier strata wrote: that runtime
// (test/fixtures/runtime-single-layout.sh, as strata shipped it) makes the machine's records.
const base = mkdtempSync(join(tmpdir(), 'strata-apart-'));
const root = join(base, 'root');
const ADDRESS = '127.0.44.9';
const LEGACY = new URL('../fixtures/runtime-single-layout.sh', import.meta.url).pathname;
const pids: number[] = [];

afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(base, { recursive: true, force: true });
});

function processItem(key: string, start: string): Item {
  return { key, machine: 'm1', layer: 'service', name: key.slice(2), module: 'process', spec: { start, env: {} }, dependsOn: [], stateful: false, hash: key };
}

/** Runs the earlier strata's runtime on ROOT itself (its single layout), as that strata did. */
function legacy(verb: string, args: string[], input?: Buffer): string {
  return execFileSync('sh', [LEGACY, root, verb, ...args], { input, encoding: 'utf8' });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

describe('deployments on one machine', () => {
  const keeper = processItem('s.keeper', 'while :; do date +%s%N >>"$STATE_DIR/ticks"; sleep 0.05; done\n');
  const stray = processItem('s.stray', 'exec sleep 60\n');
  const record = (items: Item[]) => ({ deployment: 'old', generation: 1, manifestHash: 'h1', machine: { name: 'm1', address: ADDRESS, target: { kind: 'local' }, items } satisfies MachineManifest });
  let keeperPid = 0;

  it('an earlier strata left one deployment in the single layout, with an item another deployment had overwritten its record with', () => {
    legacy('activate', [keeper.key, stray.key], encodeActivation([encodeSpec(itemSpecFiles(keeper, ADDRESS)), encodeSpec(itemSpecFiles(stray, ADDRESS))]));
    legacy('commit', ['1'], Buffer.from(JSON.stringify(record([keeper]))));
    keeperPid = Number(readFileSync(join(root, 'items/s.keeper/pid'), 'utf8'));
    pids.push(keeperPid, Number(readFileSync(join(root, 'items/s.stray/pid'), 'utf8')));
    expect(alive(keeperPid)).toBe(true);
  });

  it('reads the single layout in place for its own deployment, and writes nothing for a read', async () => {
    const own = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'old');
    const s = await own.status();
    expect(s.generation).toBe(1);
    expect(s.items.find((i) => i.key === 's.keeper')).toMatchObject({ state: 'running', pid: keeperPid });
    expect((await own.recorded())?.deployment).toBe('old');
    // Another deployment sees nothing of it as its own, and is told what it holds.
    const other = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'new');
    expect((await other.status()).items).toEqual([]);
    expect((await other.status()).generation).toBe(null);
    expect((await other.others()).map((o) => [o.deployment, o.record.generation, o.record.machine?.items.map((i) => i.key)])).toEqual([['old', 1, ['s.keeper']]]);
    expect(existsSync(join(root, 'deployments'))).toBe(false);
  });

  it('moves the single layout into its deployment on its first change; the running process keeps its state directory', async () => {
    const own = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'old');
    await own.lock('owner:1:x');
    const dr = join(root, 'deployments/old');
    expect(readFileSync(join(dr, 'generations/current'), 'utf8').trim()).toBe('1');
    expect(existsSync(join(dr, 'items/s.keeper/pid'))).toBe(true);
    expect(statSync(join(dr, 'lock')).isDirectory()).toBe(true);
    expect(existsSync(join(root, 'generations'))).toBe(false);
    expect(existsSync(join(root, 'items/s.keeper'))).toBe(false);
    // The item its record does not list stays where it was: it is not this deployment's.
    expect(existsSync(join(root, 'items/s.stray/pid'))).toBe(true);
    expect(lstatSync(join(root, 'state/s.keeper')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dr, 'store'))).toBe('../../store');
    // Still running, still writing to STATE_DIR (the old path), which now leads to the new place.
    expect(alive(keeperPid)).toBe(true);
    const ticks = () => readFileSync(join(dr, 'state/s.keeper/ticks'), 'utf8').split('\n').length;
    const before = ticks();
    await new Promise((r) => setTimeout(r, 300));
    expect(ticks()).toBeGreaterThan(before);
    const s = await own.status();
    expect(s.generation).toBe(1);
    expect(s.lock).toMatch(/^owner:1:x /);
    expect(s.items.map((i) => [i.key, i.state, i.pid])).toEqual([['s.keeper', 'running', keeperPid]]);
    await own.unlock('owner:1:x');
  });

  it('keeps each deployment to its own items and its own lock', async () => {
    const own = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'old');
    const other = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'new');
    // Two deployments hold their locks at once: a transition of one does not wait for the other.
    await own.lock('a:1:a');
    await other.lock('b:1:b');
    // The same key in two deployments: two items, two processes.
    const theirs = processItem('s.keeper', 'exec sleep 60\n');
    expect((await other.activate(theirs)).code).toBe(0);
    const theirPid = Number(readFileSync(join(root, 'deployments/new/items/s.keeper/pid'), 'utf8'));
    pids.push(theirPid);
    expect(theirPid).not.toBe(keeperPid);
    expect((await other.deactivate(theirs)).code).toBe(0);
    expect(alive(keeperPid)).toBe(true);
    expect((await own.status()).items.map((i) => i.key)).toEqual(['s.keeper']);
    expect((await other.others()).map((o) => o.deployment)).toEqual(['old']);
    expect((await own.others())).toEqual([]);
    await other.unlock('b:1:b');
    // Destroying one deployment's item stops its process only.
    expect((await own.deactivate(keeper)).code).toBe(0);
    expect(alive(keeperPid)).toBe(false);
    await own.unlock('a:1:a');
  });

  it('a transition announces what it claims while it holds its lock; others see it until it commits or lets go', async () => {
    const mine = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'new');
    const third = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'third');
    const web = processItem('s.web', 'exec sleep 60\n');
    const rec = { deployment: 'new', generation: 2, manifestHash: 'h2', machine: { name: 'm1', address: ADDRESS, target: { kind: 'local' as const }, items: [web] } };
    await mine.lock('n:1:n');
    // The answer to the announcement: what the others hold (old's record, without its item now).
    expect((await mine.claim(rec)).map((o) => o.deployment)).toEqual(['old']);
    expect(statSync(join(root, 'deployments/new/claims.pending')).mode & 0o777).toBe(0o600);
    const seen = await third.others();
    expect(seen.filter((o) => o.pending).map((o) => [o.deployment, o.record.generation])).toEqual([['new', 2]]);
    await mine.unlock('n:1:n');
    // Its lock released without a commit (a refused or rolled-back transition): the announcement no longer counts.
    expect((await third.others()).some((o) => o.pending)).toBe(false);
    await mine.lock('n:2:n');
    await mine.claim(rec);
    await mine.commit(2, rec);
    expect(existsSync(join(root, 'deployments/new/claims.pending'))).toBe(false);
    expect((await third.others()).filter((o) => o.deployment === 'new').map((o) => [o.record.generation, o.pending ?? false])).toEqual([[2, false]]);
    await mine.unlock('n:2:n');
    // A record cut short is not announced.
    await mine.lock('n:3:n');
    const cut = await mine.target.run(['sh', runtimePath(root), join(root, 'deployments/new'), 'claim'], { input: Buffer.from('{"deployment":"new"') });
    expect(cut.code).toBe(1);
    expect(existsSync(join(root, 'deployments/new/claims.pending'))).toBe(false);
    await mine.unlock('n:3:n');
  });

  it("another deployment's damaged record refuses a claim on its machine rather than letting it through", async () => {
    const broken = join(root, 'deployments/broken/generations');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'current'), '1\n');
    const web = processItem('s.web', 'x');
    (web.spec as { env: Record<string, string> }).env.PORT = '8080';
    const desired = { version: 1 as const, deployment: 'third', machines: { m1: { name: 'm1', address: ADDRESS, target: { kind: 'local' as const }, items: [web] } }, artifacts: {}, hash: 'h' };
    const plan = { format: 'strata-plan/2' as const, kind: 'transition' as const, deployment: 'third', basis: { generation: null, manifestHash: null }, generation: 1, desired, changes: [], steps: [], uploads: {}, machines: ['m1'] };
    const rt = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'third');
    writeFileSync(join(broken, '1.json'), '{"deployment":"broken","generation":1,"machine":{"name":"m1","address":"x","items":"nope"}}');
    await expect(findClaimConflicts(plan, undefined, () => rt)).rejects.toThrow(/record of deployment broken there is damaged/);
    writeFileSync(join(broken, '1.json'), '{"deployment":"broken","generation":1,"machine":');
    await expect(findClaimConflicts(plan, undefined, () => rt)).rejects.toThrow(/deployment broken there is not valid JSON/);
    rmSync(join(root, 'deployments/broken'), { recursive: true });
    expect(await findClaimConflicts(plan, undefined, () => rt)).toEqual([]);
  });

  it('accepts only a safe deployment name, on the controller and on the machine', async () => {
    for (const bad of ['../x', 'a/b', '.hidden', '', 'a b', '$(id)']) {
      expect(() => new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, bad)).toThrow(/unsafe deployment name/);
    }
    mkdirSync(join(base, 'elsewhere'), { recursive: true });
    for (const dir of [join(root, 'deployments', '.x'), join(root, 'deployments', 'a;b'), join(root, 'notdeployments', 'x'), join(root, 'deployments', 'x', '..')]) {
      const r = await new LocalTarget('m1').run(['sh', runtimePath(root), dir, 'status']);
      expect(r.code, dir).toBe(2);
      expect(r.stderr).toMatch(/unsafe deployment name|not a deployment directory/);
    }
  });
});
