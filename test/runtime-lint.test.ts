import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUNTIME_PARTS, runtimePartPath, runtimeScript } from '../src/targets/runtime/script.ts';

// shellcheck (Debian's package; .ci/run installs it) on the runtime: every warning, note and
// style hint fails, except those silenced next to their line with a reason. A part alone
// refers to globals set by another part, so SC2034, SC2153 and SC2154 (assigned but unused,
// used but unassigned) only hold for the assembled script, which is checked with all of them.
const dir = mkdtempSync(join(tmpdir(), 'strata-rt-lint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function shellcheck(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('shellcheck', ['-s', 'sh', '-f', 'gcc', ...args], { encoding: 'utf8' });
  if (r.error) throw new Error(`shellcheck is needed for this test (apt-get install shellcheck): ${r.error.message}`);
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('the runtime under shellcheck', () => {
  it('finds nothing in the assembled script', () => {
    const file = join(dir, 'runtime.sh');
    writeFileSync(file, runtimeScript().script);
    expect(shellcheck([file])).toEqual({ code: 0, out: '' });
  });

  it.each(RUNTIME_PARTS)('finds nothing in %s', (part) => {
    expect(shellcheck(['-e', 'SC2034,SC2153,SC2154', runtimePartPath(part)])).toEqual({ code: 0, out: '' });
  });

  it.each(RUNTIME_PARTS)('%s stays small (at most 250 lines)', (part) => {
    expect(readFileSync(runtimePartPath(part), 'utf8').split('\n').length).toBeLessThanOrEqual(251);
  });

  it('every silenced check says why', () => {
    const silenced = runtimeScript()
      .script.toString()
      .split('\n')
      .filter((l) => /#\s*shellcheck\s/.test(l));
    for (const line of silenced) expect(line, line).toMatch(/#\s*shellcheck\s+\S+.*#\s*\S/);
  });
});
