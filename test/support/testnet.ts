import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostPath, testnetDown, testnetUp, type HostShell, type Testnet, type TestnetHost } from '../../src/testnet/index.ts';

/**
 * A working copy of the hello-world example wired to a fresh test network of real sshd
 * hosts. CI runs as root with sshd installed; without them these tests fail, never skip.
 */
export interface Fixture {
  work: string;
  stateDir: string;
  net: Testnet;
  host(name: string): TestnetHost;
  /** Real path of a file inside a host (under /var/lib/strata, /root or /tmp). */
  path(name: string, inside: string): string;
  /** How many SSH logins the host's sshd has accepted so far. */
  logins(name: string): number;
  close(): Promise<void>;
}

export async function helloWorldFixture(subnet: string, machines: string[], shell?: HostShell): Promise<Fixture> {
  const work = mkdtempSync(join(tmpdir(), 'strata-e2e-'));
  cpSync(new URL('../../examples/hello-world', import.meta.url), work, { recursive: true, filter: (src) => !src.includes('/testnet') && !src.includes('/.strata') });
  const net = await testnetUp({ dir: join(work, 'testnet'), machines, subnet, shell });
  const host = (name: string) => {
    const h = net.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  };
  return {
    work,
    stateDir: join(work, '.state'),
    net,
    host,
    path: (name, inside) => hostPath(host(name), inside),
    logins: (name) => (readFileSync(join(host(name).dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length,
    async close() {
      await testnetDown(net.dir);
      rmSync(work, { recursive: true, force: true });
    },
  };
}
