import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/targets/connect.ts';
import { ask } from '../support/net.ts';
import { spawnStrata } from '../support/strataProcess.ts';
import { helloWorldFixture, type Fixture } from '../support/testnet.ts';

// Recorded state is never silently forgotten: the hello-world example on real sshd test hosts,
// driven by the real CLI (`node bin/strata.js`) from a directory other than the models'.
// The state directory defaults to .strata beside the root file; when it is lost, plan and apply
// refuse and say where it probably is; `strata adopt` rebuilds it from the machines' records.

const SUBNET = '127.0.45';
let fx: Fixture;
let root: string;
let elsewhere: string;
const addr = (m: string) => fx.host(m).address;
const env = () => {
  const e = { ...process.env };
  delete e.STRATA_STATE_DIR;
  return e;
};
/** The real CLI run from `elsewhere`, as a user in another directory would. */
async function strata(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawnStrata(args, { cwd: elsewhere, env: env() });
  const { code } = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}
const recordedOn = (m: string) => readFileSync(fx.path(m, '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim();

beforeAll(async () => {
  fx = await helloWorldFixture(SUBNET, ['test1', 'test2', 'test3']);
  root = join(fx.work, 'strata.testnet.yaml');
  elsewhere = mkdtempSync(join(tmpdir(), 'strata-elsewhere-'));
});

afterAll(async () => {
  await fx?.close();
  if (elsewhere) rmSync(elsewhere, { recursive: true, force: true });
});

describe('recorded state on real SSH hosts', () => {
  const anchored = () => join(fx.work, '.strata');

  it('the default state directory is .strata beside the root file, whatever the working directory', async () => {
    const r = await strata('apply', root, '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(join(anchored(), 'deployments', 'hello-world', 'current'))).toBe(true);
    expect(existsSync(join(elsewhere, '.strata'))).toBe(false);
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
    // another directory again: the same state is found (no "nothing deployed")
    const s = await strata('status', root, '--json');
    expect(s.code).toBe(0);
    expect(JSON.parse(s.out).generation).toBe(1);
  });

  it('plan and apply with a state directory that does not know the running generation refuse, naming where the state is', async () => {
    const empty = join(elsewhere, 'empty-state');
    const plan = await strata('plan', root, '--state', empty);
    expect(plan.code).toBe(2);
    expect(plan.err).toMatch(/the machines run a generation of hello-world that the state directory .*empty-state does not know/);
    expect(plan.err).toMatch(/test1 records generation 1 \(manifest [0-9a-f]{12}\): nothing is recorded here/);
    // the hint: the state beside the root file holds generation 1
    expect(plan.err).toContain(`The state of hello-world is probably in ${anchored()} (generation 1): use it with --state ${anchored()}`);
    expect(plan.err).toContain('strata adopt');
    expect(plan.err).not.toMatch(/internal error|\n\s+at /);

    const apply = await strata('apply', root, '--state', empty);
    expect(apply.code).toBe(2);
    expect(apply.err).toMatch(/does not know/);
    // nothing changed: the services still answer, every machine still records generation 1, no lock left
    expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
    for (const m of ['test1', 'test2', 'test3']) {
      expect(recordedOn(m)).toBe('1');
      expect(existsSync(fx.path(m, '/var/lib/strata/deployments/hello-world/lock'))).toBe(false);
    }
    expect(existsSync(join(empty, 'deployments', 'hello-world', 'current'))).toBe(false);
  });

  it('with the state directory moved away, plan refuses; adopt rebuilds it; plan shows no change; destroy stops the services', async () => {
    const moved = join(elsewhere, 'moved-away');
    renameSync(anchored(), moved);
    const plan = await strata('plan', root);
    expect(plan.code).toBe(2);
    expect(plan.err).toMatch(/does not know: test1 records generation 1/);
    expect(plan.err).toMatch(/strata adopt /);
    // status and destroy do not answer "nothing deployed" while it runs
    for (const cmd of ['status', 'destroy']) {
      const r = await strata(cmd, root);
      expect(r.code, `${cmd}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(/does not know: test1 records generation 1/);
    }
    expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');

    const adopt = await strata('adopt', root);
    expect(adopt.err).toBe('');
    expect(adopt.code).toBe(0);
    expect(adopt.out).toMatch(/^hello-world: adopted generation 1 \(manifest [0-9a-f]{12}, 3 service instances\) into .*\.strata/);
    for (const m of ['test1', 'test2', 'test3']) expect(adopt.out).toContain(`  ${m}: part of generation 1`);
    // the adopted generation is the one deployed: the same manifest hash as the original record
    const original = JSON.parse(readFileSync(join(moved, 'deployments', 'hello-world', 'generations', '1.json'), 'utf8'));
    const adopted = JSON.parse(readFileSync(join(anchored(), 'deployments', 'hello-world', 'generations', '1.json'), 'utf8'));
    expect(adopted.manifest.hash).toBe(original.manifest.hash);
    expect(adopted.manifest.machines).toEqual(original.manifest.machines);

    // adopting again does not overwrite recorded state without --force
    const again = await strata('adopt', root);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/records generation 1 of hello-world already; adopt replaces recorded state only with --force/);

    // A damaged state: refused; adopt --force sets the damaged file aside and rebuilds it.
    const gen1 = join(anchored(), 'deployments', 'hello-world', 'generations', '1.json');
    truncateSync(gen1, 80);
    const damaged = await strata('plan', root);
    expect(damaged.code).toBe(2);
    expect(damaged.err).toContain(`the state file ${gen1} is not valid JSON (truncated or damaged)`);
    expect((await strata('adopt', root)).code).toBe(2);
    const forced = await strata('adopt', root, '--force');
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toContain(`replacing damaged state`);
    expect(forced.out).toContain(`set aside the damaged ${gen1}`);
    expect(readdirSync(dirname(gen1)).filter((f) => f.startsWith('1.json.damaged-'))).toHaveLength(1);

    const after = await strata('plan', root);
    expect(after.code).toBe(0);
    expect(after.out).toContain('No changes: every machine already runs the desired state.');

    const destroy = await strata('destroy', root, '-q');
    expect(destroy.err).toBe('');
    expect(destroy.code).toBe(0);
    expect(destroy.out).toContain('everything stopped and removed (generation 2)');
    await expect(ask(addr('test1'), 5001)).rejects.toThrow(/ECONNREFUSED/);
    await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
    await expect(ask(addr('test3'), 5001)).rejects.toThrow(/ECONNREFUSED/);
    for (const m of ['test1', 'test2', 'test3']) expect(recordedOn(m)).toBe('2');
  });

  it('adopt refuses machines that disagree or do not add up and takes the generation it is told; older state is refused; records of another deployment do not count', async () => {
    // Through the runtime, test2 and test3 record a generation 3 of hello-world, each with another manifest.
    const manifest = JSON.parse(readFileSync(join(anchored(), 'deployments/hello-world/generations/2.json'), 'utf8')).manifest;
    const commitOn = async (m: string, record: { deployment: string; generation: number; manifestHash: string }) => {
      const rt = openRuntime(manifest.machines[m], 'hello-world', { stateDir: anchored() });
      try {
        await rt.commit(record.generation, { ...record, machine: manifest.machines[m] });
      } finally {
        await rt.target.close();
      }
    };
    await commitOn('test2', { deployment: 'hello-world', generation: 3, manifestHash: 'a'.repeat(64) });
    await commitOn('test3', { deployment: 'hello-world', generation: 3, manifestHash: 'b'.repeat(64) });
    const state = join(elsewhere, 'adopted');
    const ambiguous = await strata('adopt', root, '--state', state);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.err).toContain('the machines disagree on generation 3 of hello-world: aaaaaaaaaaaa on test2; bbbbbbbbbbbb on test3. Name the one to take with --manifest-hash');
    const incomplete = await strata('adopt', root, '--state', state, '--manifest-hash', 'aaaa');
    expect(incomplete.code).toBe(2);
    expect(incomplete.err).toMatch(/make up manifest [0-9a-f]{12}, but generation 3 was recorded with manifest aaaaaaaaaaaa/);
    expect(existsSync(join(state, 'deployments', 'hello-world', 'current'))).toBe(false);

    // Generation 2 is still recorded on every machine (test2 and test3 keep their last ten).
    const two = await strata('adopt', root, '--state', state, '--generation', '2');
    expect(two.err).toBe('');
    expect(two.code).toBe(0);
    expect(two.out).toMatch(/^hello-world: adopted generation 2 \(manifest [0-9a-f]{12}, 0 service instances\)/);
    // That state is older than test2 and test3: apply refuses before changing anything.
    const apply = await strata('apply', root, '--state', state);
    expect(apply.code).toBe(2);
    expect(apply.err).toMatch(/test2 records generation 3 \(manifest aaaaaaaaaaaa\): above generation 2, the highest recorded here/);
    await expect(ask(addr('test1'), 5001)).rejects.toThrow(/ECONNREFUSED/);

    // --partial takes test2's history of generation 3 as far as it goes (replacing the state with
    // --force); test3's generation 3 is another history, which apply then refuses.
    const partial = await strata('adopt', root, '--state', state, '--manifest-hash', 'aaaa', '--partial', '--force');
    expect(partial.code).toBe(0);
    expect(partial.out).toMatch(/adopted generation 3 \(manifest [0-9a-f]{12}, partial, 0 service instances\) into .*, replacing generation 2/);
    expect(partial.out).toContain('test3: left out: records generation 3 with manifest bbbbbbbbbbbb');
    const diverged = await strata('apply', root, '--state', state);
    expect(diverged.code).toBe(2);
    expect(diverged.err).toMatch(/test3 records generation 3 \(manifest bbbbbbbbbbbb\): recorded here with manifest [0-9a-f]{12}, on the machine with bbbbbbbbbbbb/);
    expect(diverged.err).not.toMatch(/test2 records/);

    // Records of another deployment are not hello-world's, whatever their number.
    for (const m of ['test1', 'test2', 'test3']) await commitOn(m, { deployment: 'intruder', generation: 9, manifestHash: 'c'.repeat(64) });
    const plan = await strata('plan', root, '--state', join(elsewhere, 'fresh'));
    expect(plan.err).toBe('');
    expect(plan.code).toBe(0);
    expect(plan.out).toMatch(/Plan: 3 to add, 0 to upgrade, 0 to move, 0 to remove\./);
  });
});
