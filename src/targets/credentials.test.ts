import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialIssues } from '../api/credentialIssues.ts';
import { credentialPolicy } from '../controller/config.ts';
import { parseControllerConfig } from '../controller/loadConfig.ts';
import { ModelError } from '../errors.ts';
import { deployment, load, pos } from '../../test/support/loadFixtures.ts';
import { allowedFile, refusedFileMessage, type CredentialPolicy } from './credentials.ts';
import type { MachineManifest } from '../manifest/types.ts';
import { openRuntime } from './connect.ts';
import { SshTarget } from './ssh.ts';
import { sshEnvironment } from './sshEnv.ts';

// Real directories, files and symlinks: the deployment's allowed directory holds its key, a
// link to another deployment's key, a link to a directory outside, and a dangling link.
let base: string;
let mine: string;
let theirs: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'strata-credentials-'));
  mine = join(base, 'a');
  theirs = join(base, 'b');
  mkdirSync(mine);
  mkdirSync(theirs);
  writeFileSync(join(mine, 'id_ed25519'), 'not really a key\n', { mode: 0o600 });
  writeFileSync(join(theirs, 'id_ed25519'), 'B private key\n', { mode: 0o600 });
  symlinkSync(join(theirs, 'id_ed25519'), join(mine, 'to-b-key'));
  symlinkSync(theirs, join(mine, 'to-b-dir'));
  symlinkSync(join(base, 'nothing-here'), join(mine, 'dangling'));
  symlinkSync(mine, join(base, 'a-link'));
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('allowedFile', () => {
  it('allows a file inside an allowed directory, at its real path', () => {
    expect(allowedFile(join(mine, 'id_ed25519'), [mine])).toBe(join(mine, 'id_ed25519'));
    // An allowed directory given through a symlink holds what its real directory holds.
    expect(allowedFile(join(base, 'a-link', 'id_ed25519'), [join(base, 'a-link')])).toBe(join(mine, 'id_ed25519'));
    // The path as written must lie inside an allowed directory as written: the filesystem is not asked about any other.
    expect(allowedFile(join(mine, 'id_ed25519'), [join(base, 'a-link')])).toBeUndefined();
    expect(allowedFile(join(base, 'a-link', 'id_ed25519'), [mine])).toBeUndefined();
  });

  it('refuses a file outside every allowed directory, existing or not, and with no directory allowed', () => {
    expect(allowedFile(join(theirs, 'id_ed25519'), [mine])).toBeUndefined();
    expect(allowedFile(join(theirs, 'no-such-key'), [mine])).toBeUndefined();
    expect(allowedFile('/etc/shadow', [mine])).toBeUndefined();
    expect(allowedFile(join(mine, 'id_ed25519'), [])).toBeUndefined();
    expect(allowedFile(`${mine}/../b/id_ed25519`, [mine])).toBeUndefined();
    expect(allowedFile(`${mine}x/key`, [mine])).toBeUndefined();
    expect(allowedFile('relative/key', [mine])).toBeUndefined();
    expect(allowedFile('~/.ssh/id_ed25519', [mine])).toBeUndefined();
  });

  it('refuses a symlink inside that leads out: to a file, through a directory, or dangling', () => {
    expect(allowedFile(join(mine, 'to-b-key'), [mine])).toBeUndefined();
    expect(allowedFile(join(mine, 'to-b-dir', 'id_ed25519'), [mine])).toBeUndefined();
    // Even when the file beyond the link does not exist (nothing says whether it does).
    expect(allowedFile(join(mine, 'to-b-dir', 'no-such-key'), [mine])).toBeUndefined();
    expect(allowedFile(join(mine, 'dangling'), [mine])).toBeUndefined();
  });

  it('lets a missing file inside an allowed directory through (reading it says it is missing)', () => {
    expect(allowedFile(join(mine, 'missing'), [mine])).toBe(join(mine, 'missing'));
  });
});

describe('the refusal says nothing about the file', () => {
  const policy: CredentialPolicy = { deployment: 'a', allowedFiles: [], localMachines: false };

  it('reads the same for a file that exists, one that does not, and a directory', () => {
    const words = refusedFileMessage('ssh.identity', policy);
    expect(words).not.toContain(theirs);
    expect(words).toContain('deployments[].ssh.allowedFiles');
    expect(words).toContain('deployments[].ssh.identity');
  });

  it('a connection with a refused identity is refused before any file or host is looked at', async () => {
    const messages: string[] = [];
    for (const identity of [join(theirs, 'id_ed25519'), join(theirs, 'no-such-key'), theirs, '/dev/zero']) {
      // Port 9 of 127.0.49.250: nothing listens, and nothing is ever dialled (the key is refused first).
      const t = new SshTarget({ machine: 'victim', host: '127.0.49.250', port: 9, user: 'root', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', identity, credentials: policy });
      const e = await t.run(['true']).then(() => undefined, (x: unknown) => x as { code: string; message: string });
      expect(e?.code).toBe('CREDENTIAL_NOT_ALLOWED');
      messages.push(e!.message);
    }
    expect(new Set(messages).size).toBe(1);
    expect(messages[0]).not.toMatch(/exist|directory|FIFO|device|bytes|symlink/);
  });

  it('a refused knownHosts is refused the same way', async () => {
    const t = new SshTarget({ machine: 'victim', host: '127.0.49.250', port: 9, user: 'root', knownHosts: join(theirs, 'known_hosts'), identity: join(mine, 'id_ed25519'), credentials: { ...policy, allowedFiles: [mine] } });
    const e = await t.run(['true']).then(() => undefined, (x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'CREDENTIAL_NOT_ALLOWED' });
    expect(e!.message).toContain('ssh.knownHosts names a file on the controller host that deployment a may not use');
  });
});

describe("the deployment's own key and known_hosts replace the process-wide ones", () => {
  it("a deployment with its own known_hosts never falls back to $STRATA_KNOWN_HOSTS", async () => {
    const shared = join(base, 'shared_known_hosts');
    const own = join(mine, 'known_hosts');
    writeFileSync(shared, '127.0.49.250 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n');
    writeFileSync(own, '# no entries\n');
    const env = sshEnvironment({ STRATA_KNOWN_HOSTS: shared });
    expect(env.knownHosts).toBe(shared);
    const t = new SshTarget({ machine: 'm', host: '127.0.49.250', port: 22, user: 'root', privateKey: 'unused', credentials: { deployment: 'a', allowedFiles: [], knownHosts: own, localMachines: false }, env });
    const e = await t.run(['true']).then(() => undefined, (x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'HOST_KEY_UNKNOWN' });
    expect(e!.message).toContain(own);
  });

  it('a local machine of a deployment without localMachines runs nothing', async () => {
    const marker = join(base, 'ran');
    const rt = openRuntime({ name: 'here', address: '127.0.49.9', target: { kind: 'local', root: join(base, 'local-root') }, items: [] } as unknown as MachineManifest, 'a', { stateDir: join(base, 'state'), credentials: { deployment: 'a', allowedFiles: [], localMachines: false } });
    const e = await rt.target.run(['touch', marker]).then(() => undefined, (x: unknown) => x as { code: string; message: string });
    expect(e).toMatchObject({ code: 'LOCAL_MACHINE_NOT_ALLOWED' });
    expect(e!.message).toMatch(/^machine here: a local machine runs this repository's commands on the controller host/);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('credentialIssues: the model fields, at file:line:column', () => {
  const network = (a: string, b: string) =>
    ['machines:', '  m1:', '    address: 10.0.0.1', `    ssh: { identity: ${JSON.stringify(a)}, knownHosts: ${JSON.stringify(b)} }`, '  m2:', '    target: local', '    address: 127.0.0.2', ''].join('\n');

  it('names every refused field and nothing allowed', () => {
    const text = network(join(theirs, 'id_ed25519'), join(mine, 'known_hosts'));
    const models = load(deployment({ network: text }));
    const issues = credentialIssues(models, { deployment: 'demo', allowedFiles: [mine], localMachines: false });
    expect(issues.map((i) => [i.field, i.line, i.column])).toEqual([
      ['machines.m1.ssh.identity', pos(text, 'identity').line, pos(text, 'identity').column],
      ['machines.m2.target', pos(text, 'target').line, pos(text, 'target').column],
    ]);
    expect(issues[0]!.file).toBe('/repo/network.yaml');
    expect(issues[1]!.message).toMatch(/localMachines: true/);
    // Allowed: nothing to say.
    expect(credentialIssues(load(deployment({ network: network(join(mine, 'id_ed25519'), join(mine, 'kh')) })), { deployment: 'demo', allowedFiles: [mine], localMachines: true })).toEqual([]);
  });

  it('gives the same message for an existing key of another deployment and a path that does not exist', () => {
    const policy: CredentialPolicy = { deployment: 'demo', allowedFiles: [mine], localMachines: true };
    const a = credentialIssues(load(deployment({ network: network(join(theirs, 'id_ed25519'), join(theirs, 'known_hosts')) })), policy);
    const b = credentialIssues(load(deployment({ network: network('/nonexistent/key', '/nonexistent/known_hosts') })), policy);
    expect(a.map((i) => i.message)).toEqual(b.map((i) => i.message));
    expect(() => {
      throw new ModelError(a);
    }).toThrow(/network\.yaml:4:\d+: machines\.m1\.ssh\.identity: ssh\.identity names a file on the controller host that deployment demo may not use/);
  });
});

describe('controller configuration: deployments[].ssh and localMachines', () => {
  const config = (extra: string) => parseControllerConfig('c.yaml', `deployments:\n  - name: web\n    repository: { url: /srv/repo }\n${extra}`);

  it('reads the deployment key, known_hosts and allowed directories; local machines are off by default', () => {
    process.env.STRATA_TEST_DEPLOY_KEY = 'key text';
    try {
      const d = config(`    ssh:\n      identity: env:STRATA_TEST_DEPLOY_KEY\n      knownHosts: /etc/strata/web/known_hosts\n      allowedFiles: [/etc/strata/web]\n`).deployments[0]!;
      const p = credentialPolicy(d);
      expect(p).toMatchObject({ deployment: 'web', allowedFiles: ['/etc/strata/web'], knownHosts: '/etc/strata/web/known_hosts', localMachines: false });
      expect(p.identity!()).toBe('key text');
    } finally {
      delete process.env.STRATA_TEST_DEPLOY_KEY;
    }
    expect(credentialPolicy(config('    localMachines: true\n').deployments[0]!)).toMatchObject({ allowedFiles: [], localMachines: true });
    expect(credentialPolicy(config('').deployments[0]!).identity).toBeUndefined();
  });

  it('refuses a relative allowed directory and an unknown field, at file:line:column', () => {
    expect(() => config('    ssh:\n      allowedFiles: [keys]\n')).toThrow(/c\.yaml:5:\d+: deployments\[0\]\.ssh\.allowedFiles\[0\]: expected an absolute path/);
    expect(() => config('    ssh: { key: /x }\n')).toThrow(/c\.yaml:4:\d+: deployments\[0\]\.ssh/);
  });
});
