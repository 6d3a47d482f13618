import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkRepo } from '../../test/support/gitServer.ts';
import { loadDeployment } from '../api/load.ts';
import { hashArtifact } from '../artifact/hash.ts';
import { readArtifact } from '../artifact/read.ts';
import { ModelError, StrataError, type ModelIssue } from '../errors.ts';
import { GitTree } from '../git/gitTree.ts';
import { fsTree } from './fsTree.ts';
import { DeploymentDir } from './realPath.ts';
import type { Tree } from './tree.ts';

// Everything a model names is read through its real path, inside the deployment directory
// (the root file's), from real files and symlinks on disk and from a commit made with real git.

let base: string;
let outside: string;
const sockets: Server[] = [];

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'strata-confine-'));
  // What an attacker's symlinks point at: a home directory with a private key, a model.
  outside = join(base, 'outside');
  mkdirSync(join(outside, '.ssh'), { recursive: true });
  writeFileSync(join(outside, '.ssh', 'id_ed25519'), 'PRIVATE KEY of the controller host\n');
  writeFileSync(join(outside, 'network.yaml'), 'machines:\n  m1: { address: 10.9.9.9 }\n');
  writeFileSync(join(outside, 'secret.txt'), 'secret\n');
});

afterAll(() => {
  for (const s of sockets) s.close();
  rmSync(base, { recursive: true, force: true });
});

const ROOT = ['name: demo', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');
const NETWORK = 'machines:\n  m1: { address: 10.0.0.1 }\n';
const DISTRIBUTION = 'distribution:\n  api: m1\n';
const servicesNaming = (artifact: string) => `services:\n  api:\n    type: process\n    artifact: ${JSON.stringify(artifact)}\n    start: ./run\n`;
/** Where `artifact:` sits in servicesNaming's text: line 4, column 5. */
const ARTIFACT_AT = { line: 4, column: 5, field: 'services.api.artifact' };

/** A deployment directory: valid models, an artifact `app`, and the extra entries given. */
function makeDeployment(name: string, extra: (dir: string) => void = () => {}, files: Record<string, string> = {}): string {
  const dir = join(base, name);
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'run'), '#!/bin/sh\n');
  const all = { 'strata.yaml': ROOT, 'network.yaml': NETWORK, 'services.yaml': servicesNaming('app'), 'distribution.yaml': DISTRIBUTION, ...files };
  for (const [p, text] of Object.entries(all)) writeFileSync(join(dir, p), text);
  extra(dir);
  return dir;
}

/** The same directory committed with real git, read as the controller reads it. */
function gitTreeOf(dir: string): GitTree {
  const repo = new WorkRepo(dir);
  repo.git('-c', 'init.defaultBranch=main', 'init', '--quiet');
  const commit = repo.commit('models');
  return new GitTree({ gitdir: join(dir, '.git'), commit, label: `repo@${commit.slice(0, 7)}` });
}

async function issuesOf(root: string, tree: Tree = fsTree): Promise<ModelIssue[]> {
  try {
    await loadDeployment(root, tree);
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    return e.issues;
  }
  throw new Error('expected the deployment to be refused');
}

/** Loads the deployment from disk and from its Git commit; both must refuse with the same issue. */
async function refusedBoth(dir: string, expected: { file?: string; line: number; column: number; field: string; message: RegExp }): Promise<void> {
  const { message, ...where } = expected;
  const disk = await issuesOf(join(dir, 'strata.yaml'));
  expect(disk, JSON.stringify(disk)).toHaveLength(1);
  expect(disk[0]).toMatchObject({ ...where, file: join(dir, where.file ?? 'services.yaml') });
  expect(disk[0]!.message).toMatch(message);
  const git = await issuesOf('strata.yaml', gitTreeOf(dir));
  expect(git, JSON.stringify(git)).toHaveLength(1);
  expect(git[0]).toMatchObject({ ...where, file: where.file ?? 'services.yaml' });
  expect(git[0]!.message).toMatch(message);
}

describe('artifacts are read inside the deployment directory only', () => {
  it('refuses artifact: hostdir/.ssh where hostdir links outside, from disk and from Git, at the field that names it', async () => {
    const dir = makeDeployment('hostdir', (d) => symlinkSync(outside, join(d, 'hostdir')), { 'services.yaml': servicesNaming('hostdir/.ssh') });
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /"hostdir\/\.ssh" leads outside the deployment directory .*hostdir is a symlink to/ });
    const e = (await loadDeployment(join(dir, 'strata.yaml')).catch((x: unknown) => x)) as ModelError;
    expect(e.code).toBe('MODEL_INVALID');
    expect(e.message).toContain(`${join(dir, 'services.yaml')}:4:5: services.api.artifact: artifact "hostdir/.ssh" leads outside`);
    expect(e.message).not.toContain('PRIVATE KEY');
  });

  it('refuses linkdir/ and linkdir, a trailing slash changing nothing', async () => {
    for (const named of ['linkdir/', 'linkdir', './linkdir/.']) {
      const dir = makeDeployment(`trailing-${named.length}`, (d) => symlinkSync(join(outside, '.ssh'), join(d, 'linkdir')), { 'services.yaml': servicesNaming(named) });
      await refusedBoth(dir, { ...ARTIFACT_AT, message: /leads outside the deployment directory/ });
    }
  });

  it('refuses a relative symlink that climbs out with .., and a chain that leaves and comes back', async () => {
    const dir = makeDeployment('climb', (d) => {
      symlinkSync('../outside/.ssh', join(d, 'up'));
      // away -> outside/back, which links back into the deployment: it left on the way.
      symlinkSync(join(d, 'app'), join(outside, 'back'));
      symlinkSync('../outside/back', join(d, 'away'));
    });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('up'));
    // Stepping out and straight back in is refused too, alike on disk and in Git.
    symlinkSync('../climb/app', join(dir, 'back-in'));
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('back-in'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /leads outside .*back-in is a symlink to \.\.\/climb\/app, which climbs above/ });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('up'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /leads outside .*up is a symlink to \.\.\/outside\/\.ssh/ });
    // On disk the chain leaves through outside/back before it comes back; in Git, it climbs out of the repository.
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('away'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /leads outside .*away is a symlink to \.\.\/outside\/back/ });
  });

  it('quotes a symlink target holding control characters, so no terminal escape reaches the output', async () => {
    const dir = makeDeployment('escape', (d) => symlinkSync('/tmp/\u001b[2J\nx', join(d, 'link')), { 'services.yaml': servicesNaming('link') });
    const [issue] = await issuesOf(join(dir, 'strata.yaml'));
    expect(issue!.message).toContain('link is a symlink to "/tmp/\\u001b[2J\\nx"');
    expect(issue!.message).not.toMatch(/[\u0000-\u001f]/);
  });

  it('refuses .. that leaves the directory lexically, and absolute paths, before reading anything', async () => {
    const dir = makeDeployment('dotdot', () => {}, { 'services.yaml': servicesNaming('app/../../outside/.ssh') });
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /leaves the deployment directory/ });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming(join(outside, '.ssh')));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /expected a path relative to this file/ });
  });

  it('follows a symlink whose destination stays inside, on disk and in Git alike', async () => {
    const dir = makeDeployment('inside-link', (d) => {
      mkdirSync(join(d, 'releases', 'v2'), { recursive: true });
      writeFileSync(join(d, 'releases', 'v2', 'run'), 'v2\n');
      symlinkSync('releases/v2', join(d, 'current'));
      symlinkSync('../current', join(d, 'releases', 'latest'));
    });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('releases/latest'));
    const disk = await loadDeployment(join(dir, 'strata.yaml'));
    const tree = gitTreeOf(dir);
    const git = await loadDeployment('strata.yaml', tree);
    expect(Object.keys(disk.manifest.artifacts)).toEqual(Object.keys(git.manifest.artifacts));
    expect(Object.values(disk.manifest.artifacts)[0]).toMatchObject({ files: 1, deploymentDir: dir });
    // Applying reads each artifact again inside the root recorded with it, from either tree.
    const ref = Object.values(git.manifest.artifacts)[0]!;
    expect(ref).toMatchObject({ kind: 'dir', path: 'releases/latest', deploymentDir: '.' });
    expect(hashArtifact(await readArtifact(ref, tree, new DeploymentDir(tree, ref.deploymentDir!))).hash).toBe(ref.hash);
  });

  it('refuses a symlink inside an artifact, wherever it points', async () => {
    const dir = makeDeployment('link-inside', (d) => {
      writeFileSync(join(d, 'other.txt'), 'inside\n');
      symlinkSync('../other.txt', join(d, 'app', 'inside-link'));
    });
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /app\/inside-link is a symlink; artifacts hold regular files and directories only/ });
    rmSync(join(dir, 'app', 'inside-link'));
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'app', 'key'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /app\/key is a symlink/ });
  });

  it('refuses a FIFO and a socket in an artifact without blocking on them', async () => {
    const dir = makeDeployment('special', (d) => execFileSync('mkfifo', [join(d, 'app', 'pipe')]));
    const fifo = await issuesOf(join(dir, 'strata.yaml'));
    expect(fifo).toEqual([{ file: join(dir, 'services.yaml'), ...ARTIFACT_AT, message: expect.stringMatching(/app\/pipe is a special file \(a FIFO, socket or device\)/) }]);
    rmSync(join(dir, 'app', 'pipe'));
    const server = createServer();
    sockets.push(server);
    await new Promise<void>((ok) => server.listen(join(dir, 'app', 'sock'), ok));
    const socket = await issuesOf(join(dir, 'strata.yaml'));
    expect(socket).toEqual([{ file: join(dir, 'services.yaml'), ...ARTIFACT_AT, message: expect.stringMatching(/app\/sock is a special file/) }]);
    // A FIFO read directly is no regular file either, and reading it does not hang.
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    expect(await fsTree.readFile(join(dir, 'fifo'))).toBeUndefined();
  });

  it('refuses a Git submodule entry in an artifact (git records no FIFOs or sockets)', async () => {
    const dir = makeDeployment('submodule');
    const repo = new WorkRepo(dir);
    repo.git('-c', 'init.defaultBranch=main', 'init', '--quiet');
    repo.git('add', '-A');
    repo.git('update-index', '--add', '--cacheinfo', `160000,${'a'.repeat(40)},app/vendor`);
    repo.git('commit', '--quiet', '-m', 'with a submodule');
    const commit = repo.head();
    const issues = await issuesOf('strata.yaml', new GitTree({ gitdir: join(dir, '.git'), commit, label: 'sub' }));
    expect(issues).toEqual([{ file: 'services.yaml', ...ARTIFACT_AT, message: expect.stringMatching(/app\/vendor is a special file/) }]);
  });

  it('refuses a missing artifact, a file where a directory is expected, and a symlink loop', async () => {
    const dir = makeDeployment('missing', (d) => {
      writeFileSync(join(d, 'plain.txt'), 'x\n');
      symlinkSync('loop-b', join(d, 'loop-a'));
      symlinkSync('loop-a', join(d, 'loop-b'));
    });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('nope/app'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /"nope\/app" does not exist/ });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('plain.txt'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /plain\.txt is a regular file, not a directory/ });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('plain.txt/sub'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /plain\.txt is not a directory/ });
    writeFileSync(join(dir, 'services.yaml'), servicesNaming('loop-a'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /too many levels of symlinks/ });
  });

  it('refuses a file name with control characters, naming the field', async () => {
    const dir = makeDeployment('names', (d) => writeFileSync(join(d, 'app', 'bad\tname'), 'x\n'));
    await refusedBoth(dir, { ...ARTIFACT_AT, message: /"bad\\tname" has control characters/ });
  });

  it('names every field that uses a refused artifact: a daemon artifact and a machine-file source', async () => {
    const network = [
      'machines:',
      '  m1:',
      '    address: 10.0.0.1',
      '    allowedPaths: [/etc/app]',
      '    files:',
      '      - { path: /etc/app/key, source: hostdir/.ssh/id_ed25519 }',
      '    daemons:',
      '      db: { start: ./db, artifact: hostdir }',
      '',
    ].join('\n');
    const dir = makeDeployment('machine-files', (d) => symlinkSync(outside, join(d, 'hostdir')), { 'network.yaml': network });
    for (const [root, tree] of [[join(dir, 'strata.yaml'), fsTree], ['strata.yaml', gitTreeOf(dir)]] as const) {
      const issues = await issuesOf(root, tree);
      const file = tree === fsTree ? join(dir, 'network.yaml') : 'network.yaml';
      expect(issues).toEqual([
        { file, line: 6, column: 31, field: 'machines.m1.files[0].source', message: expect.stringMatching(/"hostdir\/\.ssh\/id_ed25519" leads outside .*hostdir is a symlink/) },
        { file, line: 8, column: 26, field: 'machines.m1.daemons.db.artifact', message: expect.stringMatching(/"hostdir" leads outside/) },
      ]);
    }
  });
});

describe('a checkout\'s .git is no part of the repository', () => {
  it('refuses artifact: .git, a symlink to it, and an artifact that holds it', async () => {
    const dir = makeDeployment('dotgit', (d) => {
      mkdirSync(join(d, '.git'));
      writeFileSync(join(d, '.git', 'config'), '[remote "origin"]\n  url = https://deploy:token@git.example/x\n');
      symlinkSync('.GIT', join(d, 'meta'));
    });
    for (const [named, message] of [
      ['.git', /leads into \.git, a checkout's own metadata/],
      ['meta', /leads into \.GIT|leads into \.git/],
      ['.', /\.git is a checkout's own metadata .*artifacts never ship \.git/],
    ] as const) {
      writeFileSync(join(dir, 'services.yaml'), servicesNaming(named));
      const issues = await issuesOf(join(dir, 'strata.yaml'));
      expect(issues).toEqual([{ file: join(dir, 'services.yaml'), ...ARTIFACT_AT, message: expect.stringMatching(message) }]);
      expect(JSON.stringify(issues)).not.toContain('token');
    }
  });

  it('refuses a model file inside .git', async () => {
    const dir = makeDeployment('dotgit-model', (d) => {
      mkdirSync(join(d, '.git'));
      writeFileSync(join(d, '.git', 'network.yaml'), NETWORK);
    }, { 'strata.yaml': ROOT.replace('network: network.yaml', 'network: .git/network.yaml') });
    const issues = await issuesOf(join(dir, 'strata.yaml'));
    expect(issues).toEqual([{ file: join(dir, 'strata.yaml'), line: 2, column: 1, field: 'network', message: expect.stringMatching(/leads into \.git/) }]);
  });
});

describe('machine-file sources', () => {
  it('refuses a directory or a FIFO where a file is expected, and reads one through a symlink inside', async () => {
    const network = (source: string) => `machines:\n  m1:\n    address: 10.0.0.1\n    allowedPaths: [/etc/app]\n    files:\n      - { path: /etc/app/conf, source: ${source} }\n`;
    const dir = makeDeployment('file-sources', (d) => {
      execFileSync('mkfifo', [join(d, 'pipe')]);
      writeFileSync(join(d, 'app', 'conf'), 'level = info\n');
      symlinkSync('app/conf', join(d, 'conf-link'));
    });
    const at = { file: join(dir, 'network.yaml'), line: 6, column: 32, field: 'machines.m1.files[0].source' };
    for (const [source, message] of [['app', /app is a directory, not a regular file/], ['pipe', /pipe is a special file \(a FIFO, socket or device\), not a regular file/]] as const) {
      writeFileSync(join(dir, 'network.yaml'), network(source));
      expect(await issuesOf(join(dir, 'strata.yaml'))).toEqual([{ ...at, message: expect.stringMatching(message) }]);
    }
    writeFileSync(join(dir, 'network.yaml'), network('conf-link'));
    const { manifest } = await loadDeployment(join(dir, 'strata.yaml'));
    expect(Object.values(manifest.artifacts).find((a) => a.kind === 'file')).toMatchObject({ path: join(dir, 'conf-link'), files: 1 });
  });
});

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
  it('is a model error at its field, never an internal error nor a file silently left out (the CLI run as nobody)', () => {
    chmodSync(base, 0o755);
    const cli = fileURLToPath(new URL('../../bin/strata.js', import.meta.url));
    // 0700: the directory cannot be opened; 0744: it can be listed, but its entries not looked at.
    for (const [mode, unreadable] of [[0o700, 'app'], [0o744, 'app/run']] as const) {
      const dir = makeDeployment(`eacces-${mode.toString(8)}`, (d) => chmodSync(join(d, 'app'), mode));
      const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, cli, 'plan', join(dir, 'strata.yaml'), '--state', join(dir, 'state-of-nobody')], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: '/tmp' },
      });
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
