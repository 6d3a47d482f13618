import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStateStore } from '../../src/state/fileState.ts';
import { planTransition } from '../../src/plan/diff.ts';
import { loadDeployment } from '../../src/api/load.ts';
import { cli } from '../support/cli.ts';
import { spawnStrata } from '../support/strataProcess.ts';

// Every command that reads the recorded state, run through the CLI's main (and once as the real
// process) on a state directory with one damaged file: exit 2, STATE_CORRUPT naming the file, no stack trace, nothing started.
// The models are hello-world on `target: local` machines whose runtime roots are never made,
// so any attempt to deploy would show in the state directory.

let work: string;
let root: string;
let state: string;
let generation1: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-state-corrupt-'));
  cpSync(new URL('../../examples/hello-world', import.meta.url), work, { recursive: true, filter: (src) => !src.includes('/testnet') && !src.includes('/.strata') });
  root = join(work, 'strata.yaml');
  state = join(work, '.strata');
  // A recorded generation 1 of the models as they are (written as strata writes it, no machine involved).
  const { manifest } = await loadDeployment(root);
  const plan = planTransition(undefined, manifest);
  new FileStateStore(state).record('hello-world', { generation: 1, createdAt: new Date().toISOString(), manifest: plan.desired });
  generation1 = readFileSync(join(state, 'deployments/hello-world/generations/1.json'), 'utf8');
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The real CLI process, from another directory. */
async function strataProcess(...args: string[]) {
  const p = spawnStrata(args, { cwd: tmpdir() });
  const { code } = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}
const dep = () => join(state, 'deployments', 'hello-world');
const restore = () => {
  writeFileSync(join(dep(), 'generations/1.json'), generation1);
  writeFileSync(join(dep(), 'current'), '1\n');
};

const DAMAGE: [string, () => string][] = [
  ['a truncated generation file', () => (truncateSync(join(dep(), 'generations/1.json'), 64), join(dep(), 'generations/1.json'))],
  ['a generation file of garbage', () => (writeFileSync(join(dep(), 'generations/1.json'), 'PK\u0003\u0004 not json'), join(dep(), 'generations/1.json'))],
  ['a generation file with wrong types', () => (writeFileSync(join(dep(), 'generations/1.json'), JSON.stringify({ ...JSON.parse(generation1), manifest: { ...JSON.parse(generation1).manifest, machines: [] } })), join(dep(), 'generations/1.json'))],
  ['a missing current beside generations/1.json', () => (unlinkSync(join(dep(), 'current')), join(dep(), 'current'))],
  ['a current that is not a number', () => (writeFileSync(join(dep(), 'current'), '{"generation": 1}\n'), join(dep(), 'current'))],
];

describe('damaged state through the CLI', () => {
  for (const [what, damage] of DAMAGE) {
    it(`${what}: every command exits 2 with STATE_CORRUPT naming the file`, async () => {
      restore();
      const file = damage();
      for (const args of [['plan', root], ['apply', root], ['status', root], ['history', root], ['destroy', root], ['rollback', root], ['repair', root], ['adopt', root]]) {
        const r = await cli(...args);
        expect(r.code, `${args[0]}: ${r.err}`).toBe(2);
        expect(r.err, args[0]).toContain(`the state file ${file}`);
        expect(r.err, args[0]).not.toMatch(/internal error|SyntaxError|\n\s+at /);
      }
      const json = await strataProcess('apply', root, '--json');
      expect(json.code).toBe(2);
      expect(JSON.parse(json.out).error).toMatchObject({ code: 'STATE_CORRUPT', data: { file } });
      expect(json.err).not.toMatch(/internal error|SyntaxError|\n\s+at /);
      // nothing was deployed: no local machine root was made, no new generation recorded
      expect(new FileStateStore(state).generations('hello-world')).toEqual([1]);
      expect(existsSync(join(state, 'machines')), 'a local machine root').toBe(false);
    });
  }
});
