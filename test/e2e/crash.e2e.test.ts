import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentStatus } from '../../src/api/status.ts';
import { cli } from '../support/cli.ts';
import { ask } from '../support/net.ts';
import { ControllerApi, jsonLines, until } from '../support/controller.ts';
import { WorkRepo } from '../support/gitServer.ts';
import { spawnStrata } from '../support/strataProcess.ts';
import { type Fixture, helloWorldFixture } from '../support/testnet.ts';
import { contextFor } from '../../src/api/services.ts';

// Crash recovery (docs/reliability.md, "The transition and what it promises", 2: "a crash at any point is recovered on restart"): the
// real CLI (`node bin/strata.js apply`) is killed with SIGKILL at randomised moments of a
// transition of hello-world on real sshd hosts; a fresh `strata apply` (which recovers first)
// must then end converged: exit 0, every service answers where the models put it and nowhere
// else, no machine locked, every machine on the state store's generation, no journal left.

const SUBNET = '127.0.27';
const MACHINES = ['test1', 'test2', 'test3'];
const KILLS = 25;
const BUDGET_MS = 150_000;

/** When to kill: at any moment, around taking the locks, during the upload, during the steps, around the commit. */
type Strategy = 'anytime' | 'locks' | 'upload' | 'steps' | 'commit';
const STRATEGIES: Strategy[] = ['anytime', 'locks', 'upload', 'steps', 'commit'];

interface Trial {
  n: number;
  strategy: Strategy;
  /** ms from spawning the CLI to SIGKILL; undefined when it finished first. */
  killedAtMs?: number;
  /** The last progress line the killed process printed. */
  lastLine: string;
  /** How far the journal got when the process died. */
  journal: string;
  recovery: string;
  recoveryMessage: string;
  recoveryMs: number;
}

let fx: Fixture;
let root: string;
let server = 'test2';
const trials: Trial[] = [];
const addr = (m: string) => fx.host(m).address;
const journalFile = () => join(fx.stateDir, 'deployments', 'hello-world', 'journal.jsonl');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number) => Math.round(lo + Math.random() * Math.max(0, hi - lo));

function edit(file: string, from: string | RegExp, to: string): void {
  const path = join(fx.work, file);
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${file} changed nothing`);
  writeFileSync(path, next);
}

/** `node bin/strata.js apply` as a child, its stderr lines with the ms they arrived at. */
function spawnApply() {
  return spawnStrata(['apply', root, '--state', fx.stateDir], { cwd: fx.work });
}

/** What the journal said when the process died. */
function journalState(): string {
  if (!existsSync(journalFile())) return 'no journal';
  const entries = readFileSync(journalFile(), 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { kind: string; status?: string }];
      } catch {
        return [];
      }
    });
  const events = new Set(entries.map((e) => e.kind));
  for (const outcome of ['committed', 'rolled-back']) if (events.has(outcome)) return outcome;
  if (events.has('commit')) return 'commit';
  const started = entries.filter((e) => e.kind === 'step' && e.status === 'start').length;
  const done = entries.filter((e) => e.kind === 'step' && e.status === 'done').length;
  if (started) return `steps ${done}/${started} done`;
  return events.has('begin') ? 'begin' : 'empty';
}

async function expectConverged(): Promise<void> {
  const current = readFileSync(join(fx.stateDir, 'deployments', 'hello-world', 'current'), 'utf8').trim();
  expect(existsSync(journalFile()), 'journal left').toBe(false);
  for (const m of MACHINES) {
    expect(existsSync(fx.path(m, '/var/lib/strata/deployments/hello-world/lock')), `lock on ${m}`).toBe(false);
    expect(readFileSync(fx.path(m, '/var/lib/strata/deployments/hello-world/generations/current'), 'utf8').trim(), `generation on ${m}`).toBe(current);
  }
  expect(await ask(addr(server), 5000)).toBe('Hello world!\n');
  const other = server === 'test2' ? 'test3' : 'test2';
  await expect(ask(addr(other), 5000), `a server left on ${other}`).rejects.toThrow(/ECONNREFUSED/);
  for (const m of ['test1', 'test3']) expect(await ask(addr(m), 5001), `client on ${m}`).toBe('Hello world!\n');
  const status = await deploymentStatus('hello-world', contextFor({ stateDir: fx.stateDir }));
  expect(String(status.generation)).toBe(current);
  for (const m of status.machines) for (const i of m.items) expect(`${m.machine}/${i.name}: ${i.state}`).toBe(`${m.machine}/${i.name}: running`);
}

beforeAll(async () => {
  fx = await helloWorldFixture(SUBNET, MACHINES);
  root = join(fx.work, 'strata.testnet.yaml');
  // Slow starts, so a transition lasts long enough to be killed in the middle of a step.
  edit('services.yaml', 'start: node server.js', 'start: sleep 0.3 && exec node server.js');
  edit('services.yaml', 'start: node client.js', 'start: sleep 0.3 && exec node client.js');
  const first = await cli('apply', root, '--state', fx.stateDir, '-q');
  expect(first.err).toBe('');
  expect(first.code).toBe(0);
});

afterAll(async () => {
  if (trials.length) printSummary();
  await fx?.close();
});

function printSummary(): void {
  const killed = trials.filter((t) => t.killedAtMs !== undefined);
  const count = (f: (t: Trial) => boolean) => trials.filter(f).length;
  const ms = killed.map((t) => t.killedAtMs!).sort((a, b) => a - b);
  const rows = trials.map(
    (t) =>
      `  ${String(t.n).padStart(2)}  ${t.strategy.padEnd(7)}  ${t.killedAtMs === undefined ? '  (none)' : `${String(t.killedAtMs).padStart(5)} ms`}  ${t.journal.padEnd(16)}  ${t.recovery.padEnd(11)}  ${String(t.recoveryMs).padStart(5)} ms  last: ${t.lastLine.trim().slice(0, 60)}`,
  );
  const summary = [
    `crash trials: ${trials.length} (${killed.length} killed with SIGKILL)`,
    `kill moments: min ${ms[0]} ms, median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms[ms.length - 1]} ms after spawning the CLI`,
    `recovery: ${['completed', 'rolled-back', 'cleaned-up', 'none'].map((a) => `${a} ${count((t) => t.recovery === a)}`).join(', ')}`,
    `journal at the kill: ${[...new Set(trials.map((t) => t.journal.replace(/\d+\/\d+/, 'k/n')))].map((j) => `${j} ${count((t) => t.journal.replace(/\d+\/\d+/, 'k/n') === j)}`).join(', ')}`,
    '   #  kill at              journal at kill   recovery     took      ',
    ...rows,
  ].join('\n');
  console.log(summary);
  writeFileSync(join(tmpdir(), 'strata-crash-summary.txt'), `${summary}\n`);
}

describe('crash recovery: SIGKILL of `strata apply` at random moments', () => {
  let calib: { total: number; locks: number; firstStep: number; lastStep: number; steps: number };

  it('calibrates: an apply run to the end, moving the server (how long each part takes)', async () => {
    server = 'test3';
    edit('distribution.yaml', 'hello-world-server: test2', 'hello-world-server: test3');
    writeFileSync(join(fx.work, 'services/server/ballast.bin'), randomBytes(1 << 20));
    const run = spawnApply();
    const { code } = await run.exited;
    const at = (re: RegExp) => run.lines.find((l) => re.test(l.text))?.at ?? 0;
    const stepLines = run.lines.filter((l) => /^ {2}✓/.test(l.text));
    expect(code, run.lines.map((l) => l.text).join('\n')).toBe(0);
    calib = { total: Date.now() - run.t0, locks: at(/^locking /), firstStep: stepLines[0]!.at, lastStep: stepLines[stepLines.length - 1]!.at, steps: stepLines.length };
    console.log(`calibration: ${JSON.stringify(calib)}`);
    await expectConverged();
  });

  it(`${KILLS} kills at random moments, each followed by a recovering apply that converges`, { timeout: BUDGET_MS + 30_000 }, async () => {
    const started = Date.now();
    let n = 0;
    while (trials.filter((t) => t.killedAtMs !== undefined).length < KILLS && Date.now() - started < BUDGET_MS) {
      n++;
      const strategy = STRATEGIES[n % STRATEGIES.length]!;
      const next = server === 'test2' ? 'test3' : 'test2';
      edit('distribution.yaml', `hello-world-server: ${server}`, `hello-world-server: ${next}`);
      server = next;
      // New server content each time (1 MiB), so every transition uploads an artifact too.
      writeFileSync(join(fx.work, 'services/server/ballast.bin'), randomBytes(1 << 20));

      const run = spawnApply();
      let reached = true;
      let delay = 0;
      if (strategy === 'anytime') delay = rand(0, calib.total);
      else if (strategy === 'locks') {
        reached = await run.waitFor((t) => t.startsWith('locking '));
        delay = rand(0, Math.max(50, calib.firstStep - calib.locks));
      } else if (strategy === 'upload') {
        reached = await run.waitFor((t) => t.startsWith('uploading '));
        delay = rand(0, 40);
      } else if (strategy === 'steps') {
        reached = await run.waitFor((t) => /^ {2}✓/.test(t));
        delay = rand(0, calib.lastStep - calib.firstStep);
      } else {
        reached = await run.waitFor((t) => /^ {2}✓/.test(t), calib.steps);
        delay = rand(0, 30);
      }
      if (reached) await sleep(delay);
      let killedAtMs: number | undefined;
      if (!run.done()) {
        killedAtMs = Date.now() - run.t0;
        run.child.kill('SIGKILL');
      }
      const exit = await run.exited;
      if (killedAtMs !== undefined && exit.signal !== 'SIGKILL') killedAtMs = undefined; // it finished first
      const journal = journalState();

      const t1 = Date.now();
      const r = await cli('apply', root, '--state', fx.stateDir);
      const recoveryMs = Date.now() - t1;
      const m = /^recovery \(([\w-]+)\): (.*)$/m.exec(r.err);
      const trial: Trial = {
        n,
        strategy,
        killedAtMs,
        lastLine: run.lines[run.lines.length - 1]?.text ?? '(nothing printed)',
        journal,
        recovery: m?.[1] ?? 'none',
        recoveryMessage: m?.[2] ?? '',
        recoveryMs,
      };
      trials.push(trial);
      expect(r.code, `trial ${n} (${JSON.stringify(trial)}):\n${r.err}`).toBe(0);
      await expectConverged();
      // A journal that reached the machines' commit is completed or rolled back; with none, there is nothing to recover.
      if (journal === 'no journal') expect(trial.recovery).toBe('none');
      if (journal === 'committed' || journal === 'rolled-back') expect(trial.recovery).toBe('cleaned-up');
      if (journal.startsWith('steps') || journal === 'begin') expect(trial.recovery).toBe('rolled-back');
    }
    const killed = trials.filter((t) => t.killedAtMs !== undefined);
    expect(killed.length).toBeGreaterThanOrEqual(20);
    // The kills landed in different parts of the transition, and recovery had real work to do.
    expect(new Set(killed.map((t) => t.recovery)).size).toBeGreaterThanOrEqual(2);
    expect(killed.some((t) => t.recovery === 'rolled-back')).toBe(true);
  });

  it('the controller killed with SIGKILL mid-transition recovers at its next start, before reconciling, and converges', { timeout: 90_000 }, async () => {
    // The working copy becomes the controller's (local) repository; it shares the CLI's state directory.
    writeFileSync(join(fx.work, '.gitignore'), '/.state/\n/.state-controller.yaml\n/testnet/*\n!/testnet/network.physical.yaml\n');
    const repo = WorkRepo.init(fx.work);
    const head = repo.commit('hello world as deployed');
    const config = join(fx.work, '.state-controller.yaml');
    writeFileSync(
      config,
      `stateDir: ${JSON.stringify(fx.stateDir)}
listen: 127.0.0.1:0
deployments:
  - name: hello-world
    repository: { url: ${JSON.stringify(fx.work)}, branch: main }
    path: strata.testnet.yaml
    interval: 10m
    probeInterval: 10m
    ssh: { allowedFiles: [${JSON.stringify(fx.net.dir)}] }
`,
    );
    const start = async () => {
      const p = spawnStrata(['controller', '--config', config], { cwd: fx.work });
      await until(() => jsonLines(p.stdout()).find((l) => String(l.msg).startsWith('controller listening on ')), 30_000, 'the controller to listen');
      const url = String(jsonLines(p.stdout()).find((l) => String(l.msg).startsWith('controller listening on '))!.msg).replace('controller listening on ', '');
      return { p, api: new ControllerApi(url) };
    };
    const first = await start();
    try {
      await until(async () => (await first.api.status('hello-world')).lastAppliedRevision === head, 30_000, 'the controller to see the deployed commit');
      const next = server === 'test2' ? 'test3' : 'test2';
      edit('distribution.yaml', `hello-world-server: ${server}`, `hello-world-server: ${next}`);
      server = next;
      const moved = repo.commit('move the server');
      await until(async () => (await first.api.status('hello-world')).plan?.steps.some((s) => s.phase === 'activate' && s.state === 'running'), 30_000, 'a step of the transition to run', 10);
      await sleep(rand(0, 150));
      first.p.child.kill('SIGKILL');
      await first.p.exited;
      const journal = journalState();
      expect(journal).toMatch(/^steps|^commit|^committed|^rolled-back/);

      const second = await start();
      try {
        await until(
          async () => {
            const s = await second.api.status('hello-world');
            return s.lastAppliedRevision === moved && s.conditions.find((c) => c.type === 'Ready')?.status === 'True';
          },
          60_000,
          'the restarted controller to deploy the commit',
          100,
        );
        const logs = jsonLines(second.p.stdout());
        const recovery = logs.findIndex((l) => typeof l.recovery === 'string' && String(l.msg).startsWith('recovery: '));
        const applying = logs.findIndex((l) => String(l.msg).startsWith('applying commit') || String(l.msg).startsWith('up to date'));
        expect(recovery, second.p.stdout()).toBeGreaterThan(-1);
        expect(recovery).toBeLessThan(applying === -1 ? Infinity : applying);
        console.log(`controller killed with the journal at "${journal}"; at its restart: ${String(logs[recovery]!.msg)}`);
      } finally {
        second.p.child.kill('SIGTERM');
        expect((await second.p.exited).code).toBe(0);
      }
      await expectConverged();
    } finally {
      if (!first.p.done()) first.p.child.kill('SIGKILL');
    }
  });
});
