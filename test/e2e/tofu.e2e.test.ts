import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testnetDown, testnetUp, type Testnet } from '../../src/testnet/index.ts';
import { cli } from '../support/cli.ts';

// Host keys are always checked; trust on first use happens only when a machine asks for it.
let work: string;
let net: Testnet;
let stateDir: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-tofu-'));
  stateDir = join(work, 'state');
  net = await testnetUp({ dir: join(work, 'testnet'), machines: ['web', 'spare'], subnet: '127.0.29' });
  mkdirSync(join(work, 'site'));
  writeFileSync(join(work, 'site/index.html'), '<h1>hi</h1>\n');
  writeFileSync(join(work, 'services.yaml'), 'services:\n  site:\n    type: file\n    artifact: site\n    path: /tmp/www\n');
  writeFileSync(join(work, 'distribution.yaml'), 'distribution:\n  site: web\n');
  writeFileSync(join(work, 'strata.yaml'), 'name: tofu\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
});

afterAll(async () => {
  if (net) await testnetDown(net.dir);
  rmSync(work, { recursive: true, force: true });
});

const network = (extra: string) => {
  const web = net.hosts.find((h) => h.name === 'web')!;
  writeFileSync(
    join(work, 'network.yaml'),
    `machines:\n  web:\n    address: ${web.address}\n    allowedPaths: [/tmp/www]\n    ssh: { identity: ${net.identityFile}, knownHosts: ${join(work, 'empty_known_hosts')}${extra} }\n`,
  );
};

describe('host key trust', () => {
  it('refuses a machine whose host key is unknown, unless trustOnFirstUse is set', async () => {
    writeFileSync(join(work, 'empty_known_hosts'), '');
    network('');
    const refused = await cli('apply', join(work, 'strata.yaml'), '--state', stateDir);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/no host key is known for web .*set ssh.hostKey or ssh.knownHosts/);

    network(', trustOnFirstUse: true');
    const r = await cli('apply', join(work, 'strata.yaml'), '--state', stateDir, '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const pinned = readFileSync(join(stateDir, 'known_hosts'), 'utf8');
    const web = net.hosts.find((h) => h.name === 'web')!;
    expect(pinned).toBe(`${web.address} ${web.hostKey}\n`);
  });

  it('holds the pinned key afterwards: a different key is refused', async () => {
    const web = net.hosts.find((h) => h.name === 'web')!;
    const spare = net.hosts.find((h) => h.name === 'spare')!;
    writeFileSync(join(stateDir, 'known_hosts'), `${web.address} ${spare.hostKey}\n`);
    writeFileSync(join(work, 'site/index.html'), '<h1>changed</h1>\n');
    const r = await cli('apply', join(work, 'strata.yaml'), '--state', stateDir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/host key of web .* does not match/);
    // It names the file that pinned the key, and how to accept a key that changed on purpose.
    expect(r.err).toContain(`by trust on first use in ${realpathSync(join(stateDir, 'known_hosts'))}; refusing to connect`);
    expect(r.err).toContain(`ssh-keygen -R ${web.address} -f ${realpathSync(join(stateDir, 'known_hosts'))}`);
  });
});
