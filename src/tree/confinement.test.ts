import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WorkRepo } from '../../test/support/gitServer.ts';
import { loadDeployment } from '../api/load.ts';
import { hashArtifact } from '../artifact/hash.ts';
import { readArtifact } from '../artifact/read.ts';
import { ModelError } from '../errors.ts';
import { GitTree } from '../git/gitTree.ts';
import { fsTree } from './fsTree.ts';
import { DeploymentDir } from './realPath.ts';
import { ARTIFACT_AT, NETWORK, ROOT, gitTreeOf, issuesOf, makeDeployment, outside, refusedBoth, servicesNaming, sockets, useSandbox } from '../../test/support/confinementFixtures.ts';

// Artifacts and machine-file sources are read through their real paths, inside the deployment
// directory (the root file's), from real files and symlinks on disk and from real git commits.
useSandbox();

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
