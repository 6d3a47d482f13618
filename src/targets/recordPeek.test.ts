import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PEEK_SCRIPT } from './recordPeek.ts';
import { EXIT } from './runtime/protocol.ts';
import { runtimePath } from './runtime/script.ts';

const root = mkdtempSync(join(tmpdir(), 'strata-peek-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const deploymentRoot = join(root, 'deployments', 'app');
// As ShellMachineRuntime runs it: $1 the runtime, $2 the deployment's directory, then the verb.
const peek = () => spawnSync('sh', ['-c', PEEK_SCRIPT, 'strata', runtimePath(root), deploymentRoot, 'manifest'], { encoding: 'utf8' });

describe('PEEK_SCRIPT: asking a machine that may never have run strata', () => {
  it('answers nothing, and installs nothing, where strata never ran', () => {
    expect(peek()).toMatchObject({ status: 0, stdout: '' });
  });

  it('says NOT_INSTALLED where records exist but not this runtime: the deployment directory, the single layout, a migration cut short', () => {
    for (const made of [join(deploymentRoot, 'generations'), join(root, 'generations'), join(root, 'deployments', '.migrate.app')]) {
      mkdirSync(made, { recursive: true });
      expect(peek().status, made).toBe(EXIT.NOT_INSTALLED);
      rmSync(made, { recursive: true });
    }
  });

  it('runs this runtime with the deployment directory and the verb when it is installed', () => {
    const script = runtimePath(root);
    mkdirSync(dirname(script), { recursive: true });
    writeFileSync(script, 'printf "%s|" "$@"\n');
    // As every verb is run: the runtime, then the deployment's directory, then the verb.
    expect(peek()).toMatchObject({ status: 0, stdout: `${deploymentRoot}|manifest|` });
  });
});
