import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { askMachines } from '../../src/api/machineRecords.ts';
import type { MachineManifest } from '../../src/manifest/types.ts';
import { LocalTarget } from '../../src/targets/local.ts';
import { ShellMachineRuntime } from '../../src/targets/machineRuntime.ts';
import { contextFor } from '../../src/api/services.ts';

// askMachines (what `strata adopt` and the lost-state check ask) on a local target: the real
// runtime and real files. Each deployment's record is read in its own directory on the machine
// (ROOT/deployments/NAME), an earlier strata's single layout in place, and a machine that never
// ran strata gets nothing installed.
const base = mkdtempSync(join(tmpdir(), 'strata-machine-records-'));
const LEGACY = new URL('../fixtures/runtime-single-layout.sh', import.meta.url).pathname;
const ADDRESS = '127.0.45.30';
afterAll(() => rmSync(base, { recursive: true, force: true }));

const machineAt = (root: string): MachineManifest => ({ name: 'm1', address: ADDRESS, target: { kind: 'local', root }, items: [] });
const record = (deployment: string, generation: number) => ({ deployment, generation, manifestHash: `h${generation}`, machine: machineAt('') });
const ctx = contextFor({ stateDir: join(base, 'state') });

describe('askMachines', () => {
  it('a machine that never ran strata records nothing, and gets nothing installed', async () => {
    const root = join(base, 'fresh');
    mkdirSync(root);
    expect(await askMachines('web', [machineAt(root)], ctx)).toEqual([{ machine: 'm1' }]);
    expect(existsSync(join(root, 'runtime'))).toBe(false);
    expect(existsSync(join(root, 'deployments'))).toBe(false);
  });

  it("reads each deployment's record in its own directory, never another's", async () => {
    const root = join(base, 'apart');
    for (const [deployment, n] of [['web', 4], ['shop', 9]] as const) {
      const rt = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, deployment);
      await rt.commit(n, record(deployment, n));
    }
    expect(existsSync(join(root, 'deployments/web/generations/4.json'))).toBe(true);
    expect((await askMachines('web', [machineAt(root)], ctx))[0]!.record).toMatchObject({ deployment: 'web', generation: 4 });
    expect((await askMachines('shop', [machineAt(root)], ctx))[0]!.record).toMatchObject({ deployment: 'shop', generation: 9 });
    expect(await askMachines('blog', [machineAt(root)], ctx)).toEqual([{ machine: 'm1' }]);
    // a generation the machine keeps, asked for by number
    const rt = new ShellMachineRuntime(new LocalTarget('m1'), root, ADDRESS, 'web');
    await rt.commit(5, record('web', 5));
    expect((await askMachines('web', [machineAt(root)], ctx, 4))[0]!.record).toMatchObject({ generation: 4 });
    expect((await askMachines('web', [machineAt(root)], ctx))[0]!.record).toMatchObject({ generation: 5 });
  });

  it("an earlier strata's single layout (its own runtime, no current one installed) is read in place for its deployment only", async () => {
    const root = join(base, 'legacy');
    execFileSync('sh', [LEGACY, root, 'commit', '3'], { input: JSON.stringify(record('old', 3)) });
    expect(existsSync(join(root, 'generations/3.json'))).toBe(true);
    expect((await askMachines('old', [machineAt(root)], ctx))[0]).toMatchObject({ machine: 'm1', record: { deployment: 'old', generation: 3 } });
    expect(await askMachines('new', [machineAt(root)], ctx)).toEqual([{ machine: 'm1' }]);
    // read, not moved: the single layout stays until the deployment's first change
    expect(existsSync(join(root, 'generations/3.json'))).toBe(true);
    expect(existsSync(join(root, 'deployments/old'))).toBe(false);
  });
});
