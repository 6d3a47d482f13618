/**
 * `npm run bench:latency`: how long from a commit to the change running, through the
 * controller, for a one-service change (the hello-world server's GREETING), by two paths:
 * (a) a push to an HTTP Git server followed by the generic webhook, (b) a commit in a local
 * repository the controller watches. Alternating runs; prints a table, writes
 * bench/results/latency.json. See docs/benchmarks.md, "Commit to deployed".
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { testnetDown, testnetUp, type Testnet } from '../src/testnet/index.ts';
import { installSignalHandlers, onCleanup, runAllCleanups } from './lib/cleanup.ts';
import { summarisePath, renderLatencyTable, type LatencyOptions, type LatencyResults } from './lib/latency-report.ts';
import { latencyRun, pidsOf, type LatencyFixture, type LatencyRun } from './lib/latency-run.ts';
import { getStatus, MACHINES, makeRepositories, observeRefs, sleep, startController, waitApplied, type ControllerHandle, type PathKind } from './lib/latency-setup.ts';
import { round1 } from './lib/stats.ts';
import { listenersOn, systemInfo } from './lib/system.ts';

const USAGE = `npm run bench:latency -- [options]

Commit-to-deployed latency of a one-service change through the controller (needs root,
/usr/sbin/sshd, ssh-keygen, unshare, git): 3 SSH test hosts running hello-world.

  --runs R          measured runs of each path, alternating (default 7)
  --warmup W        unmeasured runs of each path first (default 1)
  --subnet S        loopback /24 of the test hosts (default 127.0.61)
  --poll-ms P       poll interval of the API and of the service (default 10)
  --settle-ms S     idle time after each run, to catch a second reconcile (default 300)
  --timeout-ms T    give up on a run after this long (default 30000)
  --watch-debounce-ms D   an experiment: the local repository watch's debounce (default:
                    what sourceFor gives, GitSource's 100 ms)
  --keep            keep the temporary directory (its path is printed)
  --out FILE        where the JSON goes (default bench/results/latency.json)
  -h, --help        this text`;

const log = (msg: string) => process.stderr.write(`bench:latency: ${msg}\n`);

function parse(argv: string[]): LatencyOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      runs: { type: 'string' },
      warmup: { type: 'string' },
      subnet: { type: 'string' },
      'poll-ms': { type: 'string' },
      'settle-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'watch-debounce-ms': { type: 'string' },
      keep: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const int = (v: string | undefined, name: string, dflt: number, min: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} takes an integer >= ${min}, not ${JSON.stringify(v)}`);
    return n;
  };
  return {
    runs: int(values.runs, 'runs', 7, 1),
    warmup: int(values.warmup, 'warmup', 1, 0),
    subnet: values.subnet ?? '127.0.61',
    pollMs: int(values['poll-ms'], 'poll-ms', 10, 1),
    settleMs: int(values['settle-ms'], 'settle-ms', 300, 0),
    timeoutMs: int(values['timeout-ms'], 'timeout-ms', 30_000, 1000),
    ...(values['watch-debounce-ms'] !== undefined ? { watchDebounceMs: int(values['watch-debounce-ms'], 'watch-debounce-ms', 0, 0) } : {}),
    keep: values.keep ?? false,
    out: values.out ?? 'bench/results/latency.json',
  };
}

/** What a run must show for its figures to mean what they say. */
function problemsOf(r: LatencyRun): string[] {
  const p: string[] = [];
  const steps = r.steps?.map((s) => `${s.action} ${s.item}@${s.machine}`).sort();
  if (!steps) p.push('the plan was never seen in the status');
  else if (steps.join(', ') !== 'activate hello-world-server@test2, deactivate hello-world-server@test2') p.push(`steps: ${steps.join(', ')}`);
  const logins = Object.entries(r.sshLogins).filter(([, n]) => n > 0);
  if (logins.length !== 1 || logins[0]![0] !== 'test2' || logins[0]![1] !== 1) p.push(`SSH logins: ${JSON.stringify(r.sshLogins)}`);
  if (JSON.stringify(r.reconciles) !== '{"applied":1}') p.push(`reconciles: ${JSON.stringify(r.reconciles)}`);
  if (r.otherReconciles !== 0) p.push(`the idle controller reconciled ${r.otherReconciles} time(s)`);
  if (!r.clientPidsUnchanged) p.push('a client restarted');
  if (!r.serverPidChanged) p.push('the server did not restart');
  if (!r.clientsRelay) p.push('the clients do not relay the new greeting');
  return p;
}

async function main(): Promise<number> {
  let opts: LatencyOptions | undefined;
  try {
    opts = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!opts) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  installSignalHandlers();
  const system = systemInfo();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'strata-latency-'));
  onCleanup(`temp dir ${tmp}`, () => {
    if (opts.keep) log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  });
  log(`working in ${tmp}`);

  const setup: Record<string, number | string> = {};
  const runs: LatencyRun[] = [];
  const warmups: LatencyRun[] = [];
  const problems: string[] = [];
  const handles: ControllerHandle[] = [];
  try {
    // Three SSH test hosts.
    const testnetDir = path.join(tmp, 'testnet');
    onCleanup(`testnet ${testnetDir}`, async () => {
      await testnetDown(testnetDir);
    });
    let t = performance.now();
    const testnet: Testnet = await testnetUp({ dir: testnetDir, machines: MACHINES, subnet: opts.subnet });
    setup.testnetUpMs = round1(performance.now() - t);
    log(`3 test hosts up on ${opts.subnet}.1-3 in ${setup.testnetUpMs} ms`);

    // The same models in both repositories; the webhook controller deploys them first.
    const repos = await makeRepositories(tmp, testnet, 'Hello world! (initial)');
    const webhookSecret = randomBytes(24).toString('hex');
    const secretFile = path.join(tmp, 'webhook-secret');
    writeFileSync(secretFile, webhookSecret, { mode: 0o600 });
    const stateDir = path.join(tmp, 'state');

    t = performance.now();
    const webhook = await startController({ path: 'webhook', stateDir, repository: { url: repos.remoteUrl, interval: '10m' }, webhookSecretFile: secretFile, allowedFiles: [testnetDir] });
    handles.push(webhook);
    await waitApplied(webhook, repos.pushHead);
    setup.firstDeploymentMs = round1(performance.now() - t);
    log(`webhook controller (API ${webhook.apiUrl}) deployed hello-world in ${setup.firstDeploymentMs} ms`);

    const refs = await observeRefs(repos.localDir);
    t = performance.now();
    const watch = await startController({ path: 'watch', stateDir, repository: { url: repos.localDir }, watchDebounceMs: opts.watchDebounceMs, allowedFiles: [testnetDir] });
    handles.push(watch);
    await waitApplied(watch, repos.localHead);
    setup.watchControllerFirstReconcileMs = round1(performance.now() - t);
    const first = (await watch.controller.metrics.reconciles.get()).values.map((v) => `${v.labels.result}: ${v.value}`).join(', ');
    setup.watchControllerFirstReconcile = first;
    log(`watch controller (API ${watch.apiUrl}) is up to date with the local repository in ${setup.watchControllerFirstReconcileMs} ms (${first})`);
    if (first !== 'unchanged: 1') problems.push(`the watch controller's first reconcile was not "unchanged" (${first}): the two repositories do not give the same manifest`);

    const fx: LatencyFixture = { testnet, stateDir, repos, webhook, watch, webhookSecret, refEvents: refs.events, pids: await pidsOf(stateDir) };
    setup.servicesRunning = [...fx.pids.keys()].sort().join(', ');
    if (fx.pids.size !== 3) throw new Error(`expected 3 running services, found ${setup.servicesRunning}`);
    await sleep(500); // let both watchers settle

    // Alternating runs. The controllers reconcile on their own only after 10 min (±10 %).
    const started = performance.now();
    const order: [PathKind, number, boolean][] = [];
    for (let i = 1; i <= opts.warmup; i++) order.push(['webhook', i, true], ['watch', i, true]);
    for (let i = 1; i <= opts.runs; i++) order.push(['webhook', i, false], ['watch', i, false]);
    for (const [kind, i, warm] of order) {
      if (performance.now() - started > 8 * 60_000) throw new Error('the runs took over 8 minutes: the 10-minute interval could now explain a reconcile; use fewer --runs');
      const r = await latencyRun(fx, kind, i, warm, opts);
      (warm ? warmups : runs).push(r);
      const p = problemsOf(r);
      if (p.length) problems.push(`${kind} run ${i}${warm ? ' (warm-up)' : ''}: ${p.join('; ')}`);
      log(
        `${kind.padEnd(7)} ${warm ? 'warm-up' : `run ${i}`}: deployed in ${r.deployedMs} ms (reconcile start ${r.reconcileStartMs}, sync ${r.syncMs}, load+plan ${r.loadPlanMs}, apply ${r.applyMs}; answered ${r.answeredMs}, API ${r.apiAppliedMs})${p.length ? ` PROBLEM: ${p.join('; ')}` : ''}`,
      );
      await sleep(100);
    }
    // The status after all runs: nothing failed, nothing pending.
    for (const h of handles) {
      const s = await getStatus(h.apiUrl);
      const ready = s.conditions.find((c) => c.type === 'Ready');
      if (ready?.status !== 'True') problems.push(`${h.path} controller not Ready at the end: ${ready?.message}`);
    }
  } finally {
    await runAllCleanups();
  }

  system.loadAvg.end = Math.round(os.loadavg()[0]! * 100) / 100;
  const leaks = listenersOn(opts.subnet);
  for (const h of handles) if (h.server.listening) leaks.push(`the ${h.path} controller's API server`);
  const { out, keep: _keep, ...options } = opts;
  const results: LatencyResults = {
    format: 'strata-bench-latency/1',
    system,
    options,
    setup,
    summary: { webhook: summarisePath(runs.filter((r) => r.path === 'webhook')), watch: summarisePath(runs.filter((r) => r.path === 'watch')) },
    runs,
    warmups,
    controllerWarnings: handles.flatMap((h) => h.logLines.map((l) => l.trim())),
    leaks: { listeners: leaks },
  };
  process.stdout.write(renderLatencyTable(results));
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ ...results, problems }, null, 2)}\n`);
  log(`wrote ${out}`);
  for (const p of problems) log(`PROBLEM: ${p}`);
  return leaks.length || problems.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    process.stderr.write(`bench:latency: failed: ${(e as Error).stack ?? String(e)}\n`);
    await runAllCleanups();
    process.exit(1);
  },
);
