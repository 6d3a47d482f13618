import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contextFor } from '../../src/api/services.ts';
import { deploymentStatus } from '../../src/api/status.ts';
import type { HostShell } from '../../src/testnet/index.ts';
import { cli } from './cli.ts';
import { ask } from './net.ts';
import { helloWorldFixture, type Fixture } from './testnet.ts';

/**
 * The hello-world example's life on test hosts of one shell variant (src/testnet/hostShell.ts):
 * deploy, status, drift found and repaired, the allowed-path symlink refusal, destroy.
 * docs/runtime.md ("Platforms") lists the variants this runs on.
 */
export function platformSuite(shell: HostShell, subnet: string): void {
  let fx: Fixture;
  let root: string;
  const addr = (m: string) => fx.host(m).address;
  const state = () => ['--state', fx.stateDir];
  const pidOf = async (machine: string, name: string) =>
    (await deploymentStatus('hello-world', contextFor({ stateDir: fx.stateDir }))).machines.find((m) => m.machine === machine)?.items.find((i) => i.name === name)?.pid;
  const append = (file: string, text: string) => writeFileSync(join(fx.work, file), `${readFileSync(join(fx.work, file), 'utf8')}${text}`);

  beforeAll(async () => {
    fx = await helloWorldFixture(subnet, ['test1', 'test2', 'test3'], shell);
    root = join(fx.work, 'strata.testnet.yaml');
    // A file service, so drift of a placed file and the allowed-path walk are exercised too.
    mkdirSync(join(fx.work, 'services/motd'));
    writeFileSync(join(fx.work, 'services/motd/motd.txt'), 'welcome\n');
    append('services.yaml', '\n  motd:\n    type: file\n    artifact: services/motd\n    path: /tmp/allowed/motd\n');
    append('distribution.yaml', '  motd: test3\n');
    append('network.yaml', '    allowedPaths: [/tmp/allowed]\n');
  }, 60_000);

  afterAll(async () => {
    await fx?.close();
  });

  describe(`hello-world on ${shell} test hosts`, () => {
    it('the hosts are what they claim to be', () => {
      const setup = join(fx.host('test1').dir, 'shell-setup.sh');
      if (shell === 'default') expect(existsSync(setup)).toBe(false);
      else expect(readFileSync(setup, 'utf8')).toMatch(shell === 'busybox' ? /"\$d\/shell\/bin" \/usr\/bin/ : /dash \/bin\/sh/);
    });

    it('deploys: the clients get "Hello world!" from the server', async () => {
      const r = await cli('apply', root, ...state(), '--json');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out).generation).toBe(1);
      expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
      expect(await ask(addr('test3'), 5001)).toBe('Hello world!\n');
      expect(readFileSync(fx.path('test3', '/tmp/allowed/motd/motd.txt'), 'utf8')).toBe('welcome\n');
      // First contact chose exact dd reads where `head -c` reads ahead (BusyBox), head where it does not.
      const runtimeDir = fx.path('test1', '/var/lib/strata/runtime');
      const env = readdirSync(runtimeDir).filter((f) => f.endsWith('.env'));
      expect(env).toHaveLength(1);
      expect(readFileSync(join(runtimeDir, env[0]!), 'utf8')).toMatch(shell === 'busybox' ? /^STRATA_READ=dd$/m : /^STRATA_READ=head$/m);
    });

    it('status reports every item running, without drift', async () => {
      const r = await cli('status', '--deployment', 'hello-world', ...state());
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).not.toMatch(/DRIFT/);
      expect(await pidOf('test2', 'hello-world-server')).toBeGreaterThan(1);
    });

    it('finds a killed process and a changed file, and repair puts back only those', async () => {
      const server = await pidOf('test2', 'hello-world-server');
      const client = await pidOf('test1', 'hello-world-client');
      process.kill(-server!, 'SIGKILL');
      writeFileSync(fx.path('test3', '/tmp/allowed/motd/motd.txt'), 'defaced\n');
      const drifted = await cli('status', '--deployment', 'hello-world', ...state());
      expect(drifted.code).toBe(1);
      expect(drifted.out).toMatch(/hello-world-server: stopped {2}DRIFT: process \d+ is not running/);
      expect(drifted.out).toMatch(/motd: .*DRIFT: file \/tmp\/allowed\/motd\/motd.txt was changed/);

      const repaired = await cli('repair', '--deployment', 'hello-world', ...state());
      expect(repaired.code, repaired.err).toBe(0);
      expect(repaired.out).toMatch(/restored 2 drifted items/);
      expect(await ask(addr('test2'), 5000)).toBe('Hello world!\n');
      expect(readFileSync(fx.path('test3', '/tmp/allowed/motd/motd.txt'), 'utf8')).toBe('welcome\n');
      expect(await pidOf('test1', 'hello-world-client')).toBe(client);
      expect((await cli('status', '--deployment', 'hello-world', ...state())).code).toBe(0);
    });

    it('refuses a file service whose path reaches outside its allowed path through a symlink', async () => {
      mkdirSync(join(fx.work, 'services/site/conf'), { recursive: true });
      writeFileSync(join(fx.work, 'services/site/conf/app.conf'), 'from the repository\n');
      const services = readFileSync(join(fx.work, 'services.yaml'), 'utf8');
      const distribution = readFileSync(join(fx.work, 'distribution.yaml'), 'utf8');
      append('services.yaml', '\n  site:\n    type: file\n    artifact: services/site\n    path: /tmp/allowed/site\n');
      append('distribution.yaml', '  site: test3\n');
      mkdirSync(fx.path('test3', '/tmp/allowed/site'), { recursive: true });
      mkdirSync(fx.path('test3', '/tmp/sentinel'));
      symlinkSync('/tmp/sentinel', fx.path('test3', '/tmp/allowed/site/conf'));
      try {
        const r = await cli('apply', root, ...state());
        expect(r.code).not.toBe(0);
        expect(r.err).toMatch(/\/tmp\/allowed\/site\/conf is a symbolic link/);
        expect(readdirSync(fx.path('test3', '/tmp/sentinel'))).toEqual([]);
        expect(await ask(addr('test1'), 5001)).toBe('Hello world!\n');
      } finally {
        writeFileSync(join(fx.work, 'services.yaml'), services);
        writeFileSync(join(fx.work, 'distribution.yaml'), distribution);
        rmSync(fx.path('test3', '/tmp/allowed/site'), { recursive: true, force: true });
      }
    });

    it('destroys: nothing answers and no item is left', async () => {
      const r = await cli('destroy', root, ...state());
      expect(r.code, r.err).toBe(0);
      await expect(ask(addr('test1'), 5001)).rejects.toThrow(/ECONNREFUSED/);
      await expect(ask(addr('test2'), 5000)).rejects.toThrow(/ECONNREFUSED/);
      expect(existsSync(fx.path('test3', '/tmp/allowed/motd/motd.txt'))).toBe(false);
    });
  });
}
