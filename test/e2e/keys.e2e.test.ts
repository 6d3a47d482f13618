import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPath, testnetDown, testnetUp, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';
import { condition, ControllerApi, jsonLines, until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { spawnStrata, type StrataProcess } from '../support/strataProcess.ts';

// Two deployments under one real `strata controller` process, each from its own repository,
// each on its own sshd test host with its own key:
//   dep-a  on a1, with its key in the controller configuration (deployments[].ssh.identity)
//   dep-b  on b1, whose only authorized key is B's; its model names that key and its
//          known_hosts inside the directory the configuration allows it (ssh.allowedFiles)
// A commit to A's repository then points a machine at b1 with B's key file and B's known_hosts,
// a second machine at a path that does not exist, and a third at `target: local`: the
// controller refuses the commit at those fields, nobody logs in to b1, and B still deploys.

const SUBNET = '127.0.49';
const LISTEN = `${SUBNET}.100:18490`;

let base: string;
let net: Testnet | undefined;
let controller: StrataProcess | undefined;
let repoA: WorkRepo;
let repoB: WorkRepo;
let bKeys: string;
let bFingerprint: string;
const api = new ControllerApi(`http://${LISTEN}`);

const host = (name: string): TestnetHost => net!.hosts.find((h) => h.name === name)!;
const sshdLog = (name: string) => readFileSync(join(host(name).dir, 'sshd.log'), 'utf8');
const loginsWith = (name: string, fingerprint: string) => sshdLog(name).split('\n').filter((l) => l.includes('Accepted publickey') && l.includes(fingerprint)).length;

const siteService = (dir: string) => `services:\n  site:\n    type: file\n    artifact: site\n    path: ${dir}\n`;
const root = (name: string) => `name: ${name}\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n`;

async function deployed(name: string, sha: string) {
  return until(
    async () => {
      const s = await api.status(name);
      return s.lastAppliedRevision === sha && condition(s, 'Ready')?.status === 'True' && s.plan === undefined ? s : undefined;
    },
    60_000,
    `${name} to run ${sha.slice(0, 12)}`,
  );
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-keys-'));
  net = await testnetUp({ dir: join(base, 'testnet'), machines: ['a1', 'b1'], subnet: SUBNET });

  // B's own key pair: b1 accepts it and nothing else (not the testnet key A holds).
  bKeys = join(base, 'keys', 'b');
  mkdirSync(bKeys, { recursive: true, mode: 0o700 });
  execFileSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', join(bKeys, 'id_ed25519')]);
  writeFileSync(hostPath(host('b1'), '/root/.ssh/authorized_keys'), readFileSync(join(bKeys, 'id_ed25519.pub')), { mode: 0o600 });
  bFingerprint = execFileSync('/usr/bin/ssh-keygen', ['-lf', join(bKeys, 'id_ed25519.pub')], { encoding: 'utf8' }).split(' ')[1]!;
  writeFileSync(join(bKeys, 'known_hosts'), `${host('b1').address} ${host('b1').hostKey}\n`, { mode: 0o600 });

  repoA = WorkRepo.init(join(base, 'repo-a'));
  repoA.commit('A on a1', {
    'strata.yaml': root('dep-a'),
    'network.yaml': `machines:\n  a1:\n    address: ${host('a1').address}\n    allowedPaths: [/tmp/a]\n    ssh: { hostKey: ${JSON.stringify(host('a1').hostKey)} }\n`,
    'services.yaml': siteService('/tmp/a/site'),
    'distribution.yaml': 'distribution:\n  site: a1\n',
    'site/index.html': 'A, first\n',
  });
  repoB = WorkRepo.init(join(base, 'repo-b'));
  repoB.commit('B on b1', {
    'strata.yaml': root('dep-b'),
    'network.yaml': `machines:\n  b1:\n    address: ${host('b1').address}\n    allowedPaths: [/tmp/b]\n    ssh: { knownHosts: ${JSON.stringify(join(bKeys, 'known_hosts'))}, identity: ${JSON.stringify(join(bKeys, 'id_ed25519'))} }\n`,
    'services.yaml': siteService('/tmp/b/site'),
    'distribution.yaml': 'distribution:\n  site: b1\n',
    'site/index.html': 'B, first\n',
  });

  const config = join(base, 'controller.yaml');
  writeFileSync(
    config,
    `stateDir: ${JSON.stringify(join(base, 'state'))}
listen: ${LISTEN}
deployments:
  - name: dep-a
    repository: { url: ${JSON.stringify(repoA.dir)}, branch: main }
    interval: 10m
    probeInterval: 10m
    ssh:
      identity: { file: ${JSON.stringify(net.identityFile)} }
  - name: dep-b
    repository: { url: ${JSON.stringify(repoB.dir)}, branch: main }
    interval: 10m
    probeInterval: 10m
    ssh:
      allowedFiles: [${JSON.stringify(bKeys)}]
`,
  );
  // No process-wide key: each deployment has only what its configuration gives it.
  const env = { ...process.env };
  for (const k of ['STRATA_SSH_KEY_FILE', 'STRATA_SSH_KEY', 'STRATA_KNOWN_HOSTS']) delete env[k];
  controller = spawnStrata(['controller', '--config', config], { cwd: base, env });
  await until(async () => (await api.request('GET', '/healthz')).status === 200, 30_000, 'the controller to answer /healthz');
});

afterAll(async () => {
  if (controller && !controller.done()) {
    controller.child.kill('SIGTERM');
    await Promise.race([controller.exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (!controller.done()) controller.child.kill('SIGKILL');
  }
  if (net) await testnetDown(net.dir);
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('each deployment reaches its machines only with what the controller configuration gives it', () => {
  let attack: string;

  it('deploys both: A with the key of its configuration, B with the key its model names inside its allowed directory', async () => {
    await deployed('dep-a', repoA.head());
    await deployed('dep-b', repoB.head());
    expect(readFileSync(hostPath(host('a1'), '/tmp/a/site/index.html'), 'utf8')).toBe('A, first\n');
    expect(readFileSync(hostPath(host('b1'), '/tmp/b/site/index.html'), 'utf8')).toBe('B, first\n');
    expect(loginsWith('b1', bFingerprint)).toBeGreaterThan(0);
  });

  it("refuses A's commit naming B's key, B's known_hosts, a missing file and a local machine, at their fields; nothing logs in to b1", async () => {
    const b1Log = sshdLog('b1').length;
    const bLogins = loginsWith('b1', bFingerprint);
    const network = `machines:
  a1:
    address: ${host('a1').address}
    allowedPaths: [/tmp/a]
    ssh: { hostKey: ${JSON.stringify(host('a1').hostKey)} }
  victim:
    address: ${host('b1').address}
    allowedPaths: [/tmp/b]
    ssh:
      knownHosts: ${JSON.stringify(join(bKeys, 'known_hosts'))}
      identity: ${JSON.stringify(join(bKeys, 'id_ed25519'))}
  probe:
    address: ${SUBNET}.8
    ssh:
      hostKey: ${JSON.stringify(host('a1').hostKey)}
      identity: ${JSON.stringify(join(bKeys, 'no-such-key'))}
  here:
    target: local
    address: ${SUBNET}.9
`;
    attack = repoA.commit("use B's key", {
      'network.yaml': network,
      'services.yaml': `${siteService('/tmp/a/site')}  evil:\n    type: file\n    artifact: site\n    path: /tmp/b/site\n`,
      'distribution.yaml': 'distribution:\n  site: a1\n  evil: victim\n',
    });
    const s = await until(
      async () => {
        const x = await api.status('dep-a');
        return x.lastFailedRevision === attack && condition(x, 'Stalled')?.status === 'True' ? x : undefined;
      },
      30_000,
      "the controller to refuse A's commit",
    );
    expect(s.lastFailure).toMatchObject({ reason: 'ModelInvalid', terminal: true });
    const lines = s.lastFailure!.message.split('\n');
    const refusal = (field: string) => lines.find((l) => l.includes(`: machines.${field}: `));
    const identityWords = 'ssh.identity names a file on the controller host that deployment dep-a may not use: under the controller, a model may name only files inside the directories its controller configuration lists in deployments[].ssh.allowedFiles, and it allows none.';
    expect(refusal('victim.ssh.identity')).toMatch(/network\.yaml:11:7: machines\.victim\.ssh\.identity: /);
    expect(refusal('victim.ssh.identity')).toContain(identityWords);
    expect(refusal('victim.ssh.knownHosts')).toMatch(/network\.yaml:10:7: machines\.victim\.ssh\.knownHosts: ssh\.knownHosts names a file on the controller host that deployment dep-a may not use/);
    // A file that does not exist reads exactly like B's key: the refusal tells nothing about either.
    expect(refusal('probe.ssh.identity')!.split(': machines.probe.ssh.identity: ')[1]).toBe(refusal('victim.ssh.identity')!.split(': machines.victim.ssh.identity: ')[1]);
    expect(refusal('here.target')).toMatch(/network\.yaml:18:5: machines\.here\.target: a local machine runs this repository's commands on the controller host.*localMachines: true/);
    expect(s.lastFailure!.message).not.toMatch(/does not exist|not a regular file|PRIVATE KEY/);
    expect(condition(s, 'Ready')?.message).toContain('generation 1 keeps running');
    expect(s.generation).toBe(1);

    // Nothing reached b1: no login with B's key, no connection at all; B's file is B's.
    await new Promise((r) => setTimeout(r, 1000));
    expect(loginsWith('b1', bFingerprint)).toBe(bLogins);
    expect(sshdLog('b1').slice(b1Log)).toBe('');
    expect(readFileSync(hostPath(host('b1'), '/tmp/b/site/index.html'), 'utf8')).toBe('B, first\n');
    expect(readFileSync(hostPath(host('a1'), '/tmp/a/site/index.html'), 'utf8')).toBe('A, first\n');
    const logged = controller!.stdout() + controller!.stderr();
    expect(logged).not.toContain(readFileSync(join(bKeys, 'id_ed25519'), 'utf8').split('\n')[1]);
    expect(jsonLines(controller!.stdout()).some((l) => l.deployment === 'dep-a' && /may not use/.test(String(l.msg)))).toBe(true);
  });

  it('B still deploys a new commit with its key, and A is still stalled on the refused commit', async () => {
    const bLogins = loginsWith('b1', bFingerprint);
    const next = repoB.commit('B, second', { 'site/index.html': 'B, second\n' });
    const s = await deployed('dep-b', next);
    expect(s.generation).toBe(2);
    expect(readFileSync(hostPath(host('b1'), '/tmp/b/site/index.html'), 'utf8')).toBe('B, second\n');
    expect(loginsWith('b1', bFingerprint)).toBeGreaterThan(bLogins);
    const a = await api.status('dep-a');
    expect([a.generation, a.lastFailedRevision, condition(a, 'Stalled')?.status]).toEqual([1, attack, 'True']);
  });
});

describe('the process-wide key', () => {
  it('a controller whose deployments share STRATA_SSH_KEY_FILE warns at start, naming them; one with its own key is not named', async () => {
    const dir = join(base, 'shared');
    const repo = WorkRepo.init(join(dir, 'repo'));
    repo.commit('nothing to deploy', { 'README.md': 'no models\n' });
    const config = join(dir, 'controller.yaml');
    const deployment = (name: string, extra = '') => `  - name: ${name}\n    repository: { url: ${JSON.stringify(repo.dir)}, branch: main }\n    interval: 10m\n${extra}`;
    writeFileSync(
      config,
      `stateDir: ${JSON.stringify(join(dir, 'state'))}\nlisten: ${SUBNET}.100:18491\ndeployments:\n${deployment('one')}${deployment('two')}${deployment('three', `    ssh: { identity: { file: ${JSON.stringify(join(bKeys, 'id_ed25519'))} } }\n`)}`,
    );
    const keyFile = join(dir, 'shared-key');
    writeFileSync(keyFile, 'SHARED-KEY-TEXT\n', { mode: 0o600 });
    const p = spawnStrata(['controller', '--config', config], { cwd: dir, env: { ...process.env, STRATA_SSH_KEY_FILE: keyFile } });
    try {
      const warning = await until(() => jsonLines(p.stdout()).find((l) => /share the controller's/.test(String(l.msg))), 30_000, 'the shared-key warning');
      expect(warning.deployments).toEqual(['one', 'two']);
      expect(String(warning.msg)).toContain('give each its own in deployments[].ssh.identity');
      expect(p.stdout() + p.stderr()).not.toContain('SHARED-KEY-TEXT');
    } finally {
      p.child.kill('SIGTERM');
      await Promise.race([p.exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (!p.done()) p.child.kill('SIGKILL');
    }
  });
});
