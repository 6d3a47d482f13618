import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FileStateStore } from '../state/fileState.ts';
import { stateDirOf } from './io.ts';
import { main } from './main.ts';

const top = mkdtempSync(join(tmpdir(), 'strata-io-'));
const envBefore = process.env.STRATA_STATE_DIR;
afterEach(() => {
  if (envBefore === undefined) delete process.env.STRATA_STATE_DIR;
  else process.env.STRATA_STATE_DIR = envBefore;
});
afterAll(() => rmSync(top, { recursive: true, force: true }));

describe('the default state directory', () => {
  it('is .strata beside the root file; $STRATA_STATE_DIR and --state come first', () => {
    delete process.env.STRATA_STATE_DIR;
    expect(stateDirOf({}, '/srv/deploy/prod/strata.yaml')).toBe('/srv/deploy/prod/.strata');
    expect(stateDirOf({}, 'examples/hello-world/strata.yaml')).toBe(join(process.cwd(), 'examples/hello-world/.strata'));
    expect(stateDirOf({})).toBe(join(process.cwd(), '.strata'));
    process.env.STRATA_STATE_DIR = '/var/lib/strata-state';
    expect(stateDirOf({}, '/srv/deploy/prod/strata.yaml')).toBe('/var/lib/strata-state');
    expect(stateDirOf({ state: 'mine' }, '/srv/deploy/prod/strata.yaml')).toBe('mine');
    process.env.STRATA_STATE_DIR = '';
    expect(() => stateDirOf({}, 'strata.yaml')).toThrow(/is empty/);
  });

  it('a command run from another directory finds the state recorded beside the root file', async () => {
    delete process.env.STRATA_STATE_DIR;
    const models = join(top, 'deploy');
    mkdirSync(models);
    writeFileSync(join(models, 'strata.yaml'), 'name: web\nnetwork: network.yaml\nservices: services.yaml\ndistribution: distribution.yaml\n');
    writeFileSync(join(models, 'network.yaml'), 'machines:\n  m1: { target: local, address: 127.0.45.30 }\n');
    writeFileSync(join(models, 'services.yaml'), 'services: {}\n');
    writeFileSync(join(models, 'distribution.yaml'), 'distribution: {}\n');
    new FileStateStore(join(models, '.strata')).record('web', {
      generation: 3,
      createdAt: '2026-01-01T00:00:00Z',
      manifest: { version: 1, deployment: 'web', machines: {}, artifacts: {}, hash: 'h' },
      source: 'recorded beside the root file',
    });
    const cwd = process.cwd();
    const other = join(top, 'elsewhere');
    mkdirSync(other);
    process.chdir(other);
    try {
      let out = '';
      const code = await main(['history', join(models, 'strata.yaml'), '--json'], { out: (s) => (out += s), err: () => {}, tty: false });
      expect(code).toBe(0);
      expect(JSON.parse(out).generations).toMatchObject([{ generation: 3, current: true, source: 'recorded beside the root file' }]);
    } finally {
      process.chdir(cwd);
    }
  });
});
