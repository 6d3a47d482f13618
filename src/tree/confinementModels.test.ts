import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadDeployment } from '../api/load.ts';
import { readArtifact } from '../artifact/read.ts';
import { StrataError } from '../errors.ts';
import { fsTree } from './fsTree.ts';
import { DeploymentDir } from './realPath.ts';
import { base, ROOT, gitTreeOf, issuesOf, makeDeployment, outside, refusedBoth, useSandbox } from '../../test/support/confinementFixtures.ts';

// Model files are read through their real paths inside the deployment directory; modes are
// kept; an unreadable or swapped path is refused (real files, real git, the CLI as nobody).
useSandbox();

describe('model files are read inside the deployment directory only', () => {
  it('refuses a root file that is a symlink leading outside its directory', async () => {
    const dir = makeDeployment('root-link');
    writeFileSync(join(outside, 'strata.yaml'), ROOT);
    rmSync(join(dir, 'strata.yaml'));
    symlinkSync(join(outside, 'strata.yaml'), join(dir, 'strata.yaml'));
    expect(await issuesOf(join(dir, 'strata.yaml'))).toEqual([
      { file: join(dir, 'strata.yaml'), line: 1, column: 1, field: '', message: expect.stringMatching(/root file cannot be read: "strata\.yaml" leads outside .*strata\.yaml is a symlink to/) },
    ]);
  });

  it('refuses network: outside/network.yaml through a symlinked directory, at the root file field', async () => {
    const dir = makeDeployment('model-link', (d) => symlinkSync(outside, join(d, 'outside')), { 'strata.yaml': ROOT.replace('network: network.yaml', 'network: outside/network.yaml') });
    await refusedBoth(dir, { file: 'strata.yaml', line: 2, column: 1, field: 'network', message: /network file .* cannot be read: "outside\/network\.yaml" leads outside the deployment directory/ });
  });

  it('refuses a model file that is a symlink to a file outside, in a list', async () => {
    const dir = makeDeployment('model-file-link', (d) => symlinkSync(join(outside, 'network.yaml'), join(d, 'physical.yaml')), {
      'strata.yaml': ROOT.replace('network: network.yaml', 'network: [network.yaml, physical.yaml]'),
    });
    const issues = await issuesOf(join(dir, 'strata.yaml'));
    expect(issues).toEqual([{ file: join(dir, 'strata.yaml'), line: 2, column: 25, field: 'network[1]', message: expect.stringMatching(/physical\.yaml is a symlink to .*outside\/network\.yaml/) }]);
  });

  it('refuses a model file that is a FIFO or a directory, without blocking on it', async () => {
    const dir = makeDeployment('model-fifo', (d) => {
      execFileSync('mkfifo', [join(d, 'pipe.yaml')]);
      mkdirSync(join(d, 'dir.yaml'));
    }, { 'strata.yaml': ROOT.replace('network: network.yaml', 'network: [pipe.yaml, dir.yaml/]') });
    expect(await issuesOf(join(dir, 'strata.yaml'))).toEqual([
      { file: join(dir, 'strata.yaml'), line: 2, column: 11, field: 'network[0]', message: expect.stringMatching(/network file .*pipe\.yaml" cannot be read: it is not a regular file/) },
      { file: join(dir, 'strata.yaml'), line: 2, column: 22, field: 'network[1]', message: expect.stringMatching(/cannot be read: it is a directory/) },
    ]);
  });

  it('reads a model file through a symlink that stays inside', async () => {
    const dir = makeDeployment('model-inside', (d) => {
      mkdirSync(join(d, 'models'));
      renameSync(join(d, 'network.yaml'), join(d, 'models', 'network.yaml'));
      symlinkSync('models/network.yaml', join(d, 'network.yaml'));
    });
    const disk = await loadDeployment(join(dir, 'strata.yaml'));
    expect(disk.models.machines.m1?.address).toBe('10.0.0.1');
    expect((await loadDeployment('strata.yaml', gitTreeOf(dir))).manifest.hash).toBe(disk.manifest.hash);
  });
});

describe('file modes', () => {
  it('keeps a 0600 file 0600 and drops group and other write and setuid, on disk', async () => {
    const dir = makeDeployment('modes', (d) => {
      for (const [name, mode] of [['secret', 0o600], ['shared', 0o664], ['tool', 0o4775], ['ro', 0o400], ['group', 0o640]] as const) {
        writeFileSync(join(d, 'app', name), name);
        chmodSync(join(d, 'app', name), mode);
      }
    });
    const entries = await readArtifact({ kind: 'dir', path: join(dir, 'app') }, fsTree, new DeploymentDir(fsTree, dir));
    expect(Object.fromEntries(entries.map((e) => [e.path, e.mode]))).toEqual({ group: '640', ro: '400', run: '644', secret: '600', shared: '644', tool: '755' });
  });

  it('reads 644 or 755 from a Git tree: git records no other modes', async () => {
    const dir = makeDeployment('git-modes', (d) => {
      writeFileSync(join(d, 'app', 'secret'), 's');
      chmodSync(join(d, 'app', 'secret'), 0o600);
      writeFileSync(join(d, 'app', 'tool'), 't');
      chmodSync(join(d, 'app', 'tool'), 0o700);
    });
    const tree = gitTreeOf(dir);
    const entries = await readArtifact({ kind: 'dir', path: 'app' }, tree, new DeploymentDir(tree, '.'));
    expect(Object.fromEntries(entries.map((e) => [e.path, e.mode]))).toEqual({ run: '644', secret: '644', tool: '755' });
  });
});

describe('a path that cannot be read', () => {
  it('is a model error at its field, never an internal error nor a file silently left out (the CLI run unprivileged)', () => {
    chmodSync(base, 0o755);
    const cli = fileURLToPath(new URL('../../bin/strata.js', import.meta.url));
    // Run as root, the CLI runs as nobody, for whom the other bits count; run unprivileged (npm
    // run test:unit), the owner's bits do. Either way: first the directory cannot be opened,
    // then it can be listed, but its entries not looked at.
    const asRoot = process.getuid?.() === 0;
    const modes = asRoot ? ([[0o700, 'app'], [0o744, 'app/run']] as const) : ([[0o000, 'app'], [0o400, 'app/run']] as const);
    for (const [mode, unreadable] of modes) {
      const dir = makeDeployment(`eacces-${mode.toString(8)}`, (d) => chmodSync(join(d, 'app'), mode));
      const argv = [process.execPath, cli, 'plan', join(dir, 'strata.yaml'), '--state', join(dir, 'state-of-nobody')];
      const [command, ...args] = asRoot ? ['runuser', '-u', 'nobody', '--', ...argv] : argv;
      const r = spawnSync(command!, args, { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/tmp' } });
      chmodSync(join(dir, 'app'), 0o755); // so the sandbox can be removed by its owner
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${join(dir, 'services.yaml')}:4:5: services.api.artifact: ${join(dir, unreadable)} cannot be read from local files (EACCES)`);
    }
  });
});

describe('a checked path that changes before it is read', () => {
  it('is not read when a directory was swapped for a symlink after the check', async () => {
    const dir = makeDeployment('swap', (d) => writeFileSync(join(d, 'app', 'id_ed25519'), 'harmless\n'));
    const deployment = new DeploymentDir(fsTree, dir);
    const checked = await deployment.resolve(join(dir, 'app'));
    expect(checked).toEqual({ path: join(dir, 'app'), kind: 'dir' });
    // The attacker wins the race: app is now a symlink to a directory outside.
    renameSync(join(dir, 'app'), join(dir, 'app.old'));
    symlinkSync(join(outside, '.ssh'), join(dir, 'app'));
    // Opened without following it: no listing of the directory outside.
    expect(await fsTree.list(checked.path)).toBeUndefined();
    await expect(readArtifact({ kind: 'dir', path: checked.path }, fsTree, deployment)).rejects.toMatchObject({ code: 'ARTIFACT_OUTSIDE_DEPLOYMENT' });
    const read = await fsTree.readFile(join(checked.path, 'id_ed25519')).catch((e: unknown) => e as StrataError);
    expect(read).toMatchObject({ code: 'SOURCE_CHANGED' });
    // And the next resolution sees the symlink for what it is.
    await expect(deployment.resolve(join(dir, 'app'))).rejects.toMatchObject({ code: 'PATH_OUTSIDE' });
  });

  it('a plan applied later reads inside the deployment directory recorded with its artifacts', async () => {
    const dir = makeDeployment('swap-apply');
    const { manifest } = await loadDeployment(join(dir, 'strata.yaml'));
    const ref = Object.values(manifest.artifacts)[0]!;
    expect(ref).toMatchObject({ kind: 'dir', path: join(dir, 'app'), deploymentDir: dir });
    renameSync(join(dir, 'app'), join(dir, 'app.old'));
    symlinkSync(join(outside, '.ssh'), join(dir, 'app'));
    await expect(readArtifact(ref, fsTree, new DeploymentDir(fsTree, ref.deploymentDir!))).rejects.toMatchObject({ code: 'ARTIFACT_OUTSIDE_DEPLOYMENT' });
  });
});
