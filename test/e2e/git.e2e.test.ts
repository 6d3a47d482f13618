import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDeployment } from '../../src/api/load.ts';
import { GitError } from '../../src/git/errors.ts';
import { GitTree } from '../../src/git/gitTree.ts';
import { GitSource } from '../../src/git/source.ts';
import { packObjectCount, SshBridge, type SshExchange } from '../../src/git/sshTransport.ts';
import { parseRepoUrl, redactUrl } from '../../src/git/url.ts';
import { hostPath, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';
import { createBareRepo, GIT, runGit, startGitServer, WorkRepo, type GitServer } from '../support/gitServer.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const timings: string[] = [];

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await f();
  timings.push(`${what}: ${Math.round(performance.now() - started)} ms`);
  return out;
}

/** The rejection of p, which must reject. */
async function rejection(p: Promise<unknown>): Promise<GitError> {
  try {
    await p;
  } catch (e) {
    return e as GitError;
  }
  throw new Error('expected a rejection');
}

/** Every file under dir with its size and mtime, to prove nothing was written there. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      out.push(`${path.relative(dir, p)} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

/** Copies the tracked files of examples/hello-world to dir (its files at dir's root). */
function copyHelloWorld(dir: string): void {
  const files = execFileSync('/usr/bin/git', ['ls-files', 'examples/hello-world'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim().split('\n');
  expect(files.length).toBeGreaterThan(5);
  for (const f of files) {
    const dest = path.join(dir, path.relative('examples/hello-world', f));
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(path.join(REPO_ROOT, f), dest);
  }
}

let base: string;
beforeAll(() => {
  base = mkdtempSync(path.join(os.tmpdir(), 'strata-git-test-'));
});
afterAll(() => {
  if (timings.length) console.info(`git timings:\n  ${timings.join('\n  ')}`);
  rmSync(base, { recursive: true, force: true });
});

describe('repository URLs', () => {
  it('parses the supported forms', () => {
    expect(parseRepoUrl('https://git.example.com/org/repo.git')).toEqual({ kind: 'http', url: 'https://git.example.com/org/repo.git' });
    expect(parseRepoUrl('https://bot:s3cret@git.example.com/org/repo.git/')).toEqual({
      kind: 'http',
      url: 'https://git.example.com/org/repo.git',
      username: 'bot',
      password: 's3cret',
    });
    expect(parseRepoUrl('git@github.com:org/repo.git')).toEqual({ kind: 'ssh', user: 'git', host: 'github.com', port: 22, path: 'org/repo.git' });
    expect(parseRepoUrl('github.com:org/repo.git')).toMatchObject({ kind: 'ssh', user: 'git', path: 'org/repo.git' });
    expect(parseRepoUrl('ssh://deploy@10.0.0.5:2222/srv/git/app.git')).toEqual({ kind: 'ssh', user: 'deploy', host: '10.0.0.5', port: 2222, path: '/srv/git/app.git' });
    expect(parseRepoUrl('ssh://git@[::1]/~/app.git')).toEqual({ kind: 'ssh', user: 'git', host: '::1', port: 22, path: '~/app.git' });
    expect(parseRepoUrl('file:///srv/git/app')).toEqual({ kind: 'local', dir: '/srv/git/app' });
    expect(parseRepoUrl('/srv/git/app/')).toEqual({ kind: 'local', dir: '/srv/git/app' });
    expect(parseRepoUrl('../app', '/work/main')).toEqual({ kind: 'local', dir: '/work/app' });
  });

  it('rejects anything else with GIT_URL_INVALID, credentials redacted', () => {
    for (const bad of ['', 'git://host/repo.git', 'ftp://host/x', 'ssh://host', 'ssh://-oProxyCommand=x@host/p', 'ssh://host:99999/x', 'https://host/x?y=1', 'host:', '-evil:path']) {
      expect(() => parseRepoUrl(bad), bad).toThrow(expect.objectContaining({ code: 'GIT_URL_INVALID' }));
    }
    const e = (() => {
      try {
        parseRepoUrl('https://bot:hunter2@host/x?y=1');
      } catch (err) {
        return err as GitError;
      }
    })();
    expect(e?.code).toBe('GIT_URL_INVALID');
    expect(JSON.stringify(e)).not.toContain('hunter2');
    expect(e?.message).toContain('https://host/x?y=1');
    expect(redactUrl('https://bot:hunter2@host/x')).toBe('https://host/x');
    expect(redactUrl('ssh://deploy:pw@host/x')).toBe('ssh://deploy@host/x');
  });
});

describe('Git over HTTP (git http-backend, basic auth)', () => {
  const PASSWORD = 'correct horse battery staple';
  let server: GitServer;
  let bare: string;
  let work: WorkRepo;
  let first: string;
  let url: string;
  const passwordFile = () => path.join(base, 'http-password');

  beforeAll(async () => {
    bare = createBareRepo(path.join(base, 'srv', 'org', 'app.git'));
    work = WorkRepo.init(path.join(base, 'http-work'));
    first = work.commit('first', {
      'strata.yaml': 'name: app\n',
      'services/server/server.js': 'console.log("hello")\n',
      'services/server/run.sh': { content: '#!/bin/sh\nexec node server.js\n', mode: 0o755 },
      'services/server/current': { symlink: 'server.js' },
    });
    work.push(bare);
    writeFileSync(passwordFile(), `${PASSWORD}\n`);
    server = await startGitServer({ root: path.join(base, 'srv'), auth: { username: 'deployer', password: PASSWORD } });
    url = server.url('org/app.git');
  });
  afterAll(async () => {
    await server?.stop();
  });

  const source = (cache: string, extra: Record<string, unknown> = {}) =>
    new GitSource({ url, username: 'deployer', password: { file: passwordFile() }, ...extra }, path.join(base, 'cache', cache));

  it('clones with the right password, and the next sync sees a newly pushed commit', async () => {
    const src = source('main');
    const r1 = await timed('HTTP clone (first sync)', () => src.sync());
    expect(r1).toEqual({ commit: first, ref: 'refs/heads/main', rewritten: false });
    expect(existsSync(path.join(base, 'cache', 'main', 'repo.git', 'objects'))).toBe(true);
    // noCheckout: nothing but the git directory and the sync record
    expect(readdirSync(path.join(base, 'cache', 'main')).sort()).toEqual(['repo.git', 'synced.json']);

    const second = work.commit('second', { 'services/server/server.js': 'console.log("hello again")\n' });
    work.push(bare);
    const r2 = await timed('HTTP fetch with one new commit', () => src.sync());
    expect(r2).toEqual({ commit: second, ref: 'refs/heads/main', previous: first, rewritten: false });
    expect((await src.tree(second).readFile('services/server/server.js'))?.toString()).toBe('console.log("hello again")\n');

    const r3 = await timed('HTTP fetch, nothing new', () => src.sync());
    expect(r3).toEqual({ commit: second, ref: 'refs/heads/main', previous: second, rewritten: false });

    // The record survives a restart: a new GitSource on the same cache knows the previous commit.
    const again = await source('main').sync();
    expect(again.previous).toBe(second);
  });

  it('a wrong password fails with GIT_AUTH_FAILED, naming the repository but never the password', async () => {
    const wrong = 'not-the-password-42';
    writeFileSync(path.join(base, 'wrong-password'), wrong);
    const cache = path.join(base, 'cache', 'wrong');
    const src = new GitSource({ url, username: 'deployer', password: { file: path.join(base, 'wrong-password') } }, cache);
    const e = await rejection(src.sync());
    expect(e).toBeInstanceOf(GitError);
    expect(e.code).toBe('GIT_AUTH_FAILED');
    expect(e.message).toContain(url);
    expect(e.message).toMatch(/authentication failed/);
    const everything = `${e.message}\n${e.stack}\n${JSON.stringify(e)}\n${String(e.cause ?? '')}`;
    for (const secret of [wrong, PASSWORD, Buffer.from(`deployer:${wrong}`).toString('base64')]) expect(everything).not.toContain(secret);
    expect(readdirSync(cache)).toEqual([]);

    // Credentials in the URL are used, and redacted from errors.
    const port = new URL(url).port;
    const inUrl = new GitSource({ url: `http://deployer:${wrong}@127.0.0.1:${port}/org/app.git` }, path.join(base, 'cache', 'wrong-url'));
    const e2 = await rejection(inUrl.sync());
    expect(e2.code).toBe('GIT_AUTH_FAILED');
    expect(`${e2.message}${JSON.stringify(e2)}`).not.toContain(wrong);
    const rightInUrl = new GitSource({ url: `http://deployer:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/org/app.git` }, path.join(base, 'cache', 'right-url'));
    expect((await rightInUrl.sync()).commit).toBe(work.head());

    // No password at all: the server's 401 is an authentication failure too.
    const none = new GitSource({ url }, path.join(base, 'cache', 'none'));
    expect((await rejection(none.sync())).code).toBe('GIT_AUTH_FAILED');
  });

  it('an unknown repository is GIT_FETCH_FAILED; a clone with too many packs is made afresh', async () => {
    const e = await rejection(new GitSource({ url: server.url('org/nope.git'), username: 'deployer', password: { file: passwordFile() } }, path.join(base, 'cache', 'nope')).sync());
    expect(e.code).toBe('GIT_FETCH_FAILED');
    expect(e.message).toContain('HTTP 404');

    const cache = path.join(base, 'cache', 'packs');
    const packs = () => readdirSync(path.join(cache, 'repo.git', 'objects', 'pack')).filter((f) => f.endsWith('.pack')).length;
    const src = new GitSource({ url, username: 'deployer', password: { file: passwordFile() } }, cache, { maxPacks: 1 });
    await src.sync();
    expect(packs()).toBe(1);
    const a = work.commit('pack a', { 'pack.txt': 'a\n' });
    work.push(bare);
    expect((await src.sync()).commit).toBe(a);
    expect(packs()).toBe(2);
    const b = work.commit('pack b', { 'pack.txt': 'b\n' });
    work.push(bare);
    expect(await src.sync()).toEqual({ commit: b, ref: 'refs/heads/main', previous: a, rewritten: false });
    expect(packs()).toBe(1);
  });

  it('reports a force push as rewritten', async () => {
    const src = source('force');
    const before = (await src.sync()).commit;
    expect(before).toBe(work.head());
    work.git('reset', '--hard', first);
    const alternative = work.commit('rewritten history', { 'NOTES.md': 'another line of history\n' });
    work.push(bare, ['main'], { force: true });
    const r = await timed('HTTP fetch after a force push', () => src.sync());
    expect(r).toEqual({ commit: alternative, ref: 'refs/heads/main', previous: before, rewritten: true });
    // Ordinary progress after that is not a rewrite.
    const next = work.commit('after the rewrite', { 'NOTES.md': 'more\n' });
    work.push(bare);
    expect(await src.sync()).toEqual({ commit: next, ref: 'refs/heads/main', previous: alternative, rewritten: false });
  });

  it('resolves a tag (following it when it moves) and a pinned commit', async () => {
    work.git('tag', '-a', 'v1', '-m', 'release 1', first);
    work.git('tag', 'light', first);
    work.push(bare, ['--tags']);
    const tagged = source('tag', { tag: 'v1' });
    expect(await tagged.sync()).toEqual({ commit: first, ref: 'refs/tags/v1', rewritten: false });
    expect((await source('light', { tag: 'light' }).sync()).commit).toBe(first);

    const head = work.head();
    work.git('tag', '-f', '-a', 'v1', '-m', 'release 1, again', head);
    work.push(bare, ['--tags'], { force: true });
    expect(await tagged.sync()).toEqual({ commit: head, ref: 'refs/tags/v1', previous: first, rewritten: false });

    const pinned = source('pinned', { commit: first });
    expect(await pinned.sync()).toEqual({ commit: first, ref: first, rewritten: false });
    // A pinned commit missing from the clone is fetched (every branch and tag).
    work.git('checkout', '--quiet', '-b', 'feature');
    const onFeature = work.commit('feature work', { 'feature.txt': 'x\n' });
    work.push(bare, ['feature']);
    work.git('checkout', '--quiet', 'main');
    const repinned = source('pinned', { commit: onFeature });
    expect(await repinned.sync()).toMatchObject({ commit: onFeature, ref: onFeature, previous: first });
    expect((await repinned.tree(onFeature).readFile('feature.txt'))?.toString()).toBe('x\n');

    const missing = await rejection(source('pinned', { commit: 'f'.repeat(40) }).sync());
    expect(missing.code).toBe('GIT_REF_NOT_FOUND');
    expect((await rejection(source('nobranch', { branch: 'no-such-branch' }).sync())).code).toBe('GIT_REF_NOT_FOUND');
    expect((await rejection(source('notag', { tag: 'v404' }).sync())).code).toBe('GIT_REF_NOT_FOUND');
  });

  it('GitTree reads files, lists directories and reports modes', async () => {
    const src = source('tree');
    await src.sync();
    const tree = src.tree(first);
    expect(tree.label).toBe(`org/app@${first.slice(0, 7)}`);
    expect((await tree.readFile('strata.yaml'))?.toString()).toBe('name: app\n');
    expect((await tree.readFile('./strata.yaml'))?.toString()).toBe('name: app\n');
    expect((await tree.readFile('services/../strata.yaml'))?.toString()).toBe('name: app\n');
    expect(await tree.readFile('services')).toBeUndefined();
    expect(await tree.readFile('services/server/current')).toBeUndefined();
    expect(await tree.readFile('nope.txt')).toBeUndefined();
    expect(await tree.readFile('../strata.yaml')).toBeUndefined();
    expect((await tree.list(''))?.map((e) => e.name)).toEqual(['services', 'strata.yaml']);
    expect(await tree.list('.')).toEqual(await tree.list(''));
    expect(await tree.list('strata.yaml')).toBeUndefined();
    expect(await tree.list('services/server')).toEqual([
      { name: 'current', kind: 'symlink', mode: 0o777 },
      { name: 'run.sh', kind: 'file', mode: 0o755 },
      { name: 'server.js', kind: 'file', mode: 0o644 },
    ]);
    expect(await tree.kind('')).toBe('dir');
    expect(await tree.kind('services')).toBe('dir');
    expect(await tree.kind('services/server/current')).toBe('symlink');
    expect(await tree.kind('services/server/current/x')).toBeUndefined();
    expect(await tree.kind('services/server/run.sh')).toBe('file');
    expect(await tree.kind('missing')).toBeUndefined();
  });
});

describe('a local repository', () => {
  let work: WorkRepo;
  let cache: string;

  beforeAll(() => {
    work = WorkRepo.init(path.join(base, 'local-repo'));
    copyHelloWorld(work.dir);
    work.commit('hello world');
    cache = path.join(base, 'cache', 'local');
  });

  it('is read in place: committed state only, nothing cloned, nothing written to it', async () => {
    const committed = work.head();
    // Uncommitted edits in the working tree must not be seen.
    writeFileSync(path.join(work.dir, 'services.yaml'), 'services: {}\n');
    writeFileSync(path.join(work.dir, 'untracked.txt'), 'not committed\n');
    const before = snapshot(work.dir);
    const src = new GitSource({ url: `file://${work.dir}` }, cache);
    const r = await timed('local repository sync', () => src.sync());
    expect(r).toEqual({ commit: committed, ref: 'refs/heads/main', rewritten: false });
    const tree = src.tree(r.commit);
    expect((await tree.readFile('services.yaml'))?.toString()).toContain('hello-world-server');
    expect(await tree.readFile('untracked.txt')).toBeUndefined();
    await loadDeployment('strata.yaml', tree);
    expect(snapshot(work.dir)).toEqual(before);
    expect(readdirSync(cache)).toEqual(['synced.json']);
    work.git('checkout', '--', 'services.yaml');
    rmSync(path.join(work.dir, 'untracked.txt'));
  });

  it('loadDeployment over a GitTree equals loadDeployment from the disk', async () => {
    const src = new GitSource({ url: work.dir }, path.join(base, 'cache', 'local-load'));
    const { commit } = await src.sync();
    const fromGit = await loadDeployment('strata.yaml', src.tree(commit));
    const fromDisk = await loadDeployment(path.join(work.dir, 'strata.yaml'));
    const serviceHashes = (m: typeof fromGit.manifest) =>
      Object.values(m.machines).flatMap((mm) => mm.items.filter((i) => i.layer === 'service').map((i) => `${i.machine}/${i.key} ${i.artifact} ${i.hash}`));
    expect(serviceHashes(fromGit.manifest).length).toBe(3);
    expect(serviceHashes(fromGit.manifest)).toEqual(serviceHashes(fromDisk.manifest));
    expect(Object.keys(fromGit.manifest.artifacts).sort()).toEqual(Object.keys(fromDisk.manifest.artifacts).sort());
    expect(fromGit.manifest.hash).toBe(fromDisk.manifest.hash);
    // Artifact sources are repository-relative in Git, absolute on disk.
    expect(Object.values(fromGit.manifest.artifacts).map((a) => (a as { path?: string }).path).sort()).toEqual(['services/client', 'services/server']);
    expect(fromGit.models.rootFile).toBe('strata.yaml');
  });

  it('watch fires within a second after a commit, and not after stop', async () => {
    const src = new GitSource({ url: work.dir }, path.join(base, 'cache', 'local-watch'));
    let calls = 0;
    let wake: () => void = () => {};
    const stop = src.watch(() => {
      calls++;
      wake();
    });
    try {
      await new Promise((r) => setTimeout(r, 300)); // let the watcher settle
      const fired = new Promise<void>((resolve) => (wake = resolve));
      const started = performance.now();
      const sha = work.commit('watched', { 'watched.txt': 'x\n' });
      await Promise.race([fired, new Promise((_, reject) => setTimeout(() => reject(new Error('watch did not fire within 1s')), 1000))]);
      timings.push(`local watch fired ${Math.round(performance.now() - started)} ms after git commit returned`);
      expect((await src.sync()).commit).toBe(sha);
    } finally {
      stop();
    }
    const after = calls;
    work.commit('unwatched', { 'watched.txt': 'y\n' });
    await new Promise((r) => setTimeout(r, 500));
    expect(calls).toBe(after);
  });

  it('a directory that is no repository, and a missing branch, are clear errors', async () => {
    const e = await rejection(new GitSource({ url: base }, path.join(base, 'cache', 'norepo')).sync());
    expect(e.code).toBe('GIT_NOT_A_REPOSITORY');
    const b = await rejection(new GitSource({ url: work.dir, branch: 'release' }, path.join(base, 'cache', 'nobranch')).sync());
    expect(b.code).toBe('GIT_REF_NOT_FOUND');
    expect(b.message).toContain('branch release');
  });
});

describe('Git over SSH (testnet host, git-upload-pack)', () => {
  let net: Testnet;
  let host: TestnetHost;
  let work: WorkRepo;
  let bare: string;
  let sshUrl: string;

  beforeAll(async () => {
    net = await testnetUp({ dir: path.join(base, 'testnet'), machines: ['gitbox'], subnet: '127.0.23' });
    host = net.hosts[0]!;
    bare = createBareRepo(hostPath(host, '/root/repos/app.git'));
    work = WorkRepo.init(path.join(base, 'ssh-work'));
    copyHelloWorld(work.dir);
    work.commit('hello world');
    work.push(bare);
    sshUrl = `ssh://root@${host.address}/root/repos/app.git`;
  });
  afterAll(async () => {
    if (net) await testnetDown(net.dir);
  });

  it('clones with the pinned host key, then fetches only what is new', async () => {
    const exchanges: SshExchange[] = [];
    const cache = path.join(base, 'cache', 'ssh');
    const src = new GitSource({ url: sshUrl, hostKey: host.hostKey, sshKey: { file: net.identityFile } }, cache, { onSshExchange: (e) => exchanges.push(e) });
    const r1 = await timed('SSH clone (first sync)', () => src.sync());
    expect(r1).toEqual({ commit: work.head(), ref: 'refs/heads/main', rewritten: false });
    expect(exchanges.map((e) => e.method)).toEqual(['GET', 'POST']);
    const clonePack = exchanges[1]!;
    expect(clonePack.haves).toBe(0);
    const fromGit = await loadDeployment('strata.yaml', src.tree(r1.commit));
    expect(fromGit.manifest.hash).toBe((await loadDeployment(path.join(work.dir, 'strata.yaml'))).manifest.hash);

    exchanges.length = 0;
    const next = work.commit('second', { 'services/server/server.js': '// changed\n' });
    work.push(bare);
    const r2 = await timed('SSH fetch with one new commit', () => src.sync());
    expect(r2).toEqual({ commit: next, ref: 'refs/heads/main', previous: r1.commit, rewritten: false });
    expect(exchanges.map((e) => e.method)).toEqual(['GET', 'POST']);
    // The later fetch offered what it had, and the stateful upload-pack sent only the new
    // commit, its changed trees and the one changed blob.
    expect(exchanges[1]!.haves).toBe(1);
    expect(exchanges[1]!.packObjects).toBe(5); // commit, root tree, services/, services/server/, server.js
    expect(exchanges[1]!.packObjects!).toBeLessThan(clonePack.packObjects!);
    expect((await src.tree(next).readFile('services/server/server.js'))?.toString()).toBe('// changed\n');

    exchanges.length = 0;
    await timed('SSH fetch, nothing new', () => src.sync());
    expect(exchanges[1]!.packObjects).toBe(0);
  });

  it('the bridge answers as smart HTTP does: the advertisement, then exactly what a stateless upload-pack sends', async () => {
    const bridge = new SshBridge({ remote: { user: 'root', host: host.address, port: 22, path: '/root/repos/app.git' }, label: sshUrl, hostKey: host.hostKey, identityFile: net.identityFile });
    const bytes = async (body: AsyncIterable<Uint8Array> | undefined) => {
      const chunks: Buffer[] = [];
      for await (const c of body!) chunks.push(Buffer.from(c));
      return Buffer.concat(chunks);
    };
    const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`;
    const firstLines = (b: Buffer, n: number) => {
      const out: string[] = [];
      for (let at = 0; out.length < n; ) {
        const len = parseInt(b.subarray(at, at + 4).toString(), 16);
        out.push(b.subarray(at + 4, at + len).toString().trim());
        at += len;
      }
      return out;
    };
    try {
      const head = runGit(bare, ['rev-parse', 'HEAD']);
      const parent = runGit(bare, ['rev-parse', 'HEAD~1']);
      const get = await bridge.request({ url: `${bridge.url}/info/refs?service=git-upload-pack`, method: 'GET', headers: {} });
      expect(get.statusCode).toBe(200);
      expect(get.headers?.['content-type']).toBe('application/x-git-upload-pack-advertisement');
      const adv = await bytes(get.body);
      expect(adv.subarray(0, 34).toString()).toBe('001e# service=git-upload-pack\n0000');
      expect(adv.toString('latin1')).toContain(`${head} HEAD\0`);
      expect(adv.subarray(-4).toString()).toBe('0000');

      // wants, flush, haves and done in one body, as isomorphic-git sends them
      const request = Buffer.from(`${pkt(`want ${head} multi_ack_detailed side-band-64k ofs-delta\n`)}0000${pkt(`have ${parent}\n`)}${pkt('done\n')}`);
      const post = await bridge.request({ url: `${bridge.url}/git-upload-pack`, method: 'POST', headers: {}, body: [request] as unknown as AsyncIterableIterator<Uint8Array> });
      expect(post.headers?.['content-type']).toBe('application/x-git-upload-pack-result');
      const viaSsh = await bytes(post.body);
      const stateless = execFileSync(GIT, ['upload-pack', '--stateless-rpc', bare], { input: request });
      expect(firstLines(viaSsh, 2)).toEqual([`ACK ${parent} common`, `ACK ${parent}`]);
      expect(firstLines(stateless, 2)).toEqual(firstLines(viaSsh, 2));
      expect(packObjectCount(viaSsh)).toBe(5);
      expect(packObjectCount(stateless)).toBe(5);

      // A have the server does not know (history rewritten under us) is ignored: NAK, full pack.
      const unknown = Buffer.from(`${pkt(`want ${head} multi_ack_detailed side-band-64k ofs-delta\n`)}0000${pkt(`have ${'1'.repeat(40)}\n`)}${pkt('done\n')}`);
      const full = await bytes((await bridge.request({ url: `${bridge.url}/git-upload-pack`, method: 'POST', headers: {}, body: [unknown] as unknown as AsyncIterableIterator<Uint8Array> })).body);
      expect(firstLines(full, 1)).toEqual(['NAK']);
      expect(packObjectCount(full)).toBe(packObjectCount(execFileSync(GIT, ['upload-pack', '--stateless-rpc', bare], { input: unknown })));

      const push = await bridge.request({ url: `${bridge.url}/info/refs?service=git-receive-pack`, method: 'GET', headers: {} });
      expect(push.statusCode).toBe(403);
    } finally {
      await bridge.close();
    }
  });

  it('checks the host key against known_hosts too', async () => {
    const knownHosts = path.join(base, 'known_hosts');
    writeFileSync(knownHosts, `${host.address} ${host.hostKey}\n`);
    const src = new GitSource({ url: sshUrl, knownHosts, sshKey: { file: net.identityFile } }, path.join(base, 'cache', 'ssh-kh'));
    expect((await src.sync()).commit).toBe(work.head());
  });

  it('refuses a host whose key does not match the pinned one, and clones nothing', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const otherKey = `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')}`;
    const cache = path.join(base, 'cache', 'ssh-wrong-key');
    const src = new GitSource({ url: sshUrl, hostKey: otherKey, sshKey: { file: net.identityFile } }, cache);
    const e = await rejection(src.sync());
    expect(e.code).toBe('GIT_HOST_KEY_MISMATCH');
    expect(e.message).toContain(sshUrl);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('a repository path that does not exist on the host is GIT_FETCH_FAILED with git\'s reason', async () => {
    const src = new GitSource({ url: `ssh://root@${host.address}/root/repos/nope.git`, hostKey: host.hostKey, sshKey: { file: net.identityFile } }, path.join(base, 'cache', 'ssh-nope'));
    const e = await rejection(src.sync());
    expect(e.code).toBe('GIT_FETCH_FAILED');
    expect(e.message).toMatch(/does not appear to be a git repository/);
  });
});

describe('GitTree on its own', () => {
  it('reports a missing commit as GIT_OBJECT_MISSING', async () => {
    const work = WorkRepo.init(path.join(base, 'tree-only'));
    work.commit('x', { 'a.txt': 'a' });
    const tree = new GitTree({ gitdir: path.join(work.dir, '.git'), commit: 'e'.repeat(40), label: 'tree-only@eeeeeee' });
    const e = await rejection(tree.readFile('a.txt'));
    expect(e.code).toBe('GIT_OBJECT_MISSING');
    expect(e.message).toContain('tree-only@eeeeeee');
  });
});
