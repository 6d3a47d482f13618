import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { deploymentStatus } from '../../src/api/status.ts';
import type { StepProgress } from '../../src/controller/status.ts';
import type { Testnet } from '../../src/testnet/index.ts';
import { greeting, sshLogins } from './deploy.ts';
import {
  CLIENT_PORT,
  DEPLOYMENT,
  getStatus,
  gitAsync,
  servicesYaml,
  SERVER_MACHINE,
  SERVER_PORT,
  sleep,
  type ControllerHandle,
  type PathKind,
  type RefEvent,
  type Repositories,
} from './latency-setup.ts';
import { round1 } from './stats.ts';
import { contextFor } from '../../src/api/services.ts';

/** Everything a run needs; made once by bench/latency.ts. */
export interface LatencyFixture {
  testnet: Testnet;
  stateDir: string;
  repos: Repositories;
  webhook: ControllerHandle;
  watch: ControllerHandle;
  webhookSecret: string;
  /** Events of the second chokidar watcher on the local repository's refs. */
  refEvents: RefEvent[];
  /** Pids of every service instance (`machine/service`), as after the previous run. */
  pids: Map<string, number>;
}

export interface RunOptions {
  pollMs: number;
  settleMs: number;
  timeoutMs: number;
}

/** Milliseconds; `…Ms` figures are since t0 (the moment git commit / git push returned) unless said otherwise. */
export interface LatencyRun {
  path: PathKind;
  run: number;
  warmup: boolean;
  sha: string;
  greeting: string;
  /** `git commit` (before t0 for the webhook path; ends at t0 for the watch path). */
  gitCommitMs: number;
  /** `git push` to the test Git server (webhook path; ends at t0). */
  gitPushMs?: number;
  /** t0 → the webhook answered 202 (webhook path). */
  webhookMs?: number;
  /** First file-system event chokidar reported on the refs (watch path; negative: before `git commit` returned). */
  firstRefEventMs?: number;
  refEvents?: string[];
  /** The controller's debounced watch callback fired (watch path). */
  watchFiredMs?: number;
  /** The reconcile started (the controller called the source's sync). */
  reconcileStartMs: number;
  /** Sync: fetch from the Git server (webhook) or resolve the local branch (watch). Duration. */
  syncMs: number;
  /** Read the models from the commit's tree, resolve, plan. Duration. */
  loadPlanMs: number;
  /** Apply: commit info, SSH connect, lock, steps, commit the generation, unlock; until the reconcile ended. Duration. */
  applyMs: number;
  /** Within the apply: until a poll first saw a step running (connect + lock + checks), ±pollMs. Duration. */
  applyUntilFirstStepMs?: number;
  /** Within the apply: from its start until the new greeting answered. Duration. */
  applyUntilAnswerMs: number;
  /** Within the apply: from the new greeting answering until the reconcile ended (readiness seen, generation committed, unlock, close). Duration. */
  applyAfterAnswerMs: number;
  /** The reconcile ended (status.lastReconcileAt, ms resolution). */
  reconcileEndMs: number;
  /** Reconcile end → a poll saw lastAppliedRevision = sha. Duration. */
  pollLagMs: number;
  /** A poll first saw the old server gone (connection refused). */
  serverDownMs?: number;
  /** The server first answered with the new greeting. */
  answeredMs: number;
  /** GET /api/deployments/NAME first reported lastAppliedRevision = sha. */
  apiAppliedMs: number;
  /** The figure: both of the above. */
  deployedMs: number;
  /** Steps of the plan, as the status showed them while the transition ran. */
  steps?: { id: string; action: string; machine: string; item: string }[];
  generation?: number;
  sshLogins: Record<string, number>;
  /** Reconciles during the run (and settle time) by result, in the controller of this path. */
  reconciles: Record<string, number>;
  /** strata_reconcile_duration_seconds of the run's reconciles (sum, ms): a cross-check of reconcileEndMs − reconcileStartMs. */
  reconcileMetricMs: number;
  /** Reconciles in the other controller (must be 0). */
  otherReconciles: number;
  /** HTTP requests the test Git server served for the controller's fetch (webhook path). */
  gitFetchRequests?: number;
  /** HTTP requests of the git push (webhook path). */
  gitPushRequests?: number;
  clientPidsUnchanged: boolean;
  serverPidChanged: boolean;
  /** Both clients relay the new greeting afterwards. */
  clientsRelay: boolean;
  apiPolls: number;
  servicePolls: number;
}

export async function latencyRun(fx: LatencyFixture, kind: PathKind, run: number, warmup: boolean, opts: RunOptions): Promise<LatencyRun> {
  const h = kind === 'webhook' ? fx.webhook : fx.watch;
  const other = kind === 'webhook' ? fx.watch : fx.webhook;
  const dir = kind === 'webhook' ? fx.repos.pushDir : fx.repos.localDir;
  const hello = `Hello from the ${kind} run ${run}${warmup ? ' (warm-up)' : ''} ${randomBytes(3).toString('hex')}`;
  const server = fx.testnet.hosts.find((x) => x.name === SERVER_MACHINE)!;

  const rec0 = await reconcileCounts(h);
  const dur0 = await reconcileSeconds(h);
  const other0 = await reconcileCounts(other);
  const logins0 = loginsByHost(fx.testnet);
  const marks0 = h.marks.length;
  const refEvents0 = fx.refEvents.length;
  const requests0 = fx.repos.gitServer.requests.length;

  // The change: the server's GREETING, staged outside every timer.
  const file = path.join(dir, 'services.yaml');
  writeFileSync(file, servicesYaml(readFileSync(file, 'utf8'), hello));
  await gitAsync(dir, ['add', '-A']);

  const tCommit = performance.now();
  await gitAsync(dir, ['commit', '--quiet', '-m', `server greeting: ${hello}`]);
  const tCommitted = performance.now();
  let t0: number;
  let sha: string;
  let gitPushMs: number | undefined;
  let webhookMs: number | undefined;
  let requestsBeforeWebhook: number | undefined;
  if (kind === 'webhook') {
    sha = await gitAsync(dir, ['rev-parse', 'HEAD']);
    const tPush = performance.now();
    await gitAsync(dir, ['push', '--quiet', fx.repos.remoteUrl, 'main']);
    t0 = performance.now();
    gitPushMs = t0 - tPush;
    requestsBeforeWebhook = fx.repos.gitServer.requests.length;
    // What a Git host sends: the generic form, a bearer token.
    const res = await fetch(`${h.apiUrl}/webhooks/${DEPLOYMENT}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fx.webhookSecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ref: 'refs/heads/main', after: sha }),
    });
    webhookMs = performance.now() - t0;
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
  } else {
    t0 = tCommitted;
    sha = await gitAsync(dir, ['rev-parse', 'HEAD']);
  }

  const obs = await observe(h, sha, hello, server.address, t0, opts);
  const loginsAfter = loginsByHost(fx.testnet);
  await sleep(opts.settleMs); // a second reconcile (a late watch event) would show up here
  const rec1 = await reconcileCounts(h);
  const dur1 = await reconcileSeconds(h);
  const other1 = await reconcileCounts(other);

  // Where the time went, from the instrumented source.
  const marks = h.marks.slice(marks0);
  const syncEndIdx = marks.findIndex((m) => m.kind === 'syncEnd' && m.commit === sha);
  if (syncEndIdx < 0) throw new Error(`no reconcile of ${sha.slice(0, 12)} seen by the ${kind} controller's source`);
  const syncEnd = marks[syncEndIdx]!.at;
  const syncStart = marks
    .slice(0, syncEndIdx)
    .filter((m) => m.kind === 'syncStart')
    .at(-1)?.at;
  const commitInfo = marks.find((m, i) => i > syncEndIdx && m.kind === 'commitInfo' && m.commit === sha)?.at;
  if (syncStart === undefined || commitInfo === undefined) throw new Error(`incomplete source marks for ${sha.slice(0, 12)}: ${JSON.stringify(marks)}`);
  const watchFired = marks.find((m) => m.kind === 'watchFired' && m.at >= tCommit)?.at;
  const refEvents = fx.refEvents.slice(refEvents0).filter((e) => e.at >= tCommit);

  // Checks outside the timers: one SSH status round per machine, the clients relay.
  const pids = await pidsOf(fx.stateDir);
  const clientKeys = [...fx.pids.keys()].filter((k) => k.endsWith('/hello-world-client'));
  const serverKey = `${SERVER_MACHINE}/hello-world-server`;
  const clientPidsUnchanged = clientKeys.length === 2 && clientKeys.every((k) => pids.get(k) !== undefined && pids.get(k) === fx.pids.get(k));
  const serverPidChanged = pids.get(serverKey) !== undefined && pids.get(serverKey) !== fx.pids.get(serverKey);
  fx.pids = pids;
  const clients = fx.testnet.hosts.filter((x) => x.name !== SERVER_MACHINE);
  const relays = await Promise.all(clients.map((c) => greeting(c.address, CLIENT_PORT)));
  const clientsRelay = relays.every((r) => r === hello);

  const requests = fx.repos.gitServer.requests;
  const r = (n: number) => round1(n);
  return {
    path: kind,
    run,
    warmup,
    sha,
    greeting: hello,
    gitCommitMs: r(tCommitted - tCommit),
    ...(gitPushMs !== undefined ? { gitPushMs: r(gitPushMs) } : {}),
    ...(webhookMs !== undefined ? { webhookMs: r(webhookMs) } : {}),
    ...(kind === 'watch' && refEvents.length ? { firstRefEventMs: r(refEvents[0]!.at - t0), refEvents: refEvents.map((e) => `${r(e.at - t0)} ms ${e.event} ${e.path}`) } : {}),
    ...(watchFired !== undefined ? { watchFiredMs: r(watchFired - t0) } : {}),
    reconcileStartMs: r(syncStart - t0),
    syncMs: r(syncEnd - syncStart),
    loadPlanMs: r(commitInfo - syncEnd),
    applyMs: r(obs.reconcileEndAt - commitInfo),
    ...(obs.firstStepRunningAt !== undefined ? { applyUntilFirstStepMs: r(obs.firstStepRunningAt - commitInfo) } : {}),
    applyUntilAnswerMs: r(obs.answeredAt - commitInfo),
    applyAfterAnswerMs: r(obs.reconcileEndAt - obs.answeredAt),
    reconcileEndMs: r(obs.reconcileEndAt - t0),
    pollLagMs: r(obs.apiSeenAt - obs.reconcileEndAt),
    ...(obs.serverDownAt !== undefined ? { serverDownMs: r(obs.serverDownAt - t0) } : {}),
    answeredMs: r(obs.answeredAt - t0),
    apiAppliedMs: r(obs.apiSeenAt - t0),
    deployedMs: r(Math.max(obs.apiSeenAt, obs.answeredAt) - t0),
    ...(obs.steps ? { steps: obs.steps } : {}),
    ...(obs.generation !== undefined ? { generation: obs.generation } : {}),
    sshLogins: Object.fromEntries(Object.entries(loginsAfter).map(([k, v]) => [k, v - (logins0[k] ?? 0)])),
    reconciles: diffCounts(rec0, rec1),
    reconcileMetricMs: r((dur1 - dur0) * 1000),
    otherReconciles: Object.values(diffCounts(other0, other1)).reduce((a, b) => a + b, 0),
    ...(requestsBeforeWebhook !== undefined
      ? { gitFetchRequests: requests.length - requestsBeforeWebhook, gitPushRequests: requestsBeforeWebhook - requests0 }
      : {}),
    clientPidsUnchanged,
    serverPidChanged,
    clientsRelay,
    apiPolls: obs.apiPolls,
    servicePolls: obs.servicePolls,
  };
}

interface Observation {
  apiSeenAt: number;
  /** status.lastReconcileAt, converted to performance.now() time. */
  reconcileEndAt: number;
  generation?: number;
  planSeenAt?: number;
  firstStepRunningAt?: number;
  steps?: { id: string; action: string; machine: string; item: string }[];
  serverDownAt?: number;
  answeredAt: number;
  apiPolls: number;
  servicePolls: number;
}

/**
 * Two pollers, every ~pollMs each, until both have seen the change: the API (lastAppliedRevision
 * = sha; on the way, the plan's steps) and the server (the new greeting).
 */
async function observe(h: ControllerHandle, sha: string, hello: string, serverAddress: string, t0: number, opts: RunOptions): Promise<Observation> {
  const deadline = t0 + opts.timeoutMs;
  let failed: Error | undefined;
  const o: Partial<Observation> & { apiPolls: number; servicePolls: number } = { apiPolls: 0, servicePolls: 0 };

  const api = async () => {
    while (o.apiSeenAt === undefined && !failed) {
      const start = performance.now();
      if (start > deadline) throw new Error(`the ${h.path} controller did not report ${sha.slice(0, 12)} within ${opts.timeoutMs} ms`);
      const s = await getStatus(h.apiUrl);
      const at = performance.now();
      o.apiPolls++;
      if (s.plan && s.plan.revision === sha) {
        o.planSeenAt ??= at;
        o.steps ??= s.plan.steps.map((x: StepProgress) => ({ id: x.id, action: x.action, machine: x.machine, item: x.item }));
        if (s.plan.steps.some((x) => x.state !== 'pending')) o.firstStepRunningAt ??= at;
      }
      if (s.lastAppliedRevision === sha) {
        o.apiSeenAt = at;
        o.generation = s.generation;
        o.reconcileEndAt = Date.parse(s.lastReconcileAt!) - performance.timeOrigin;
        break;
      }
      if (s.lastFailure?.revision === sha) throw new Error(`the ${h.path} controller failed on ${sha.slice(0, 12)}: ${s.lastFailure.message}`);
      await sleep(Math.max(0, opts.pollMs - (performance.now() - start)));
    }
  };
  const service = async () => {
    while (o.answeredAt === undefined && !failed) {
      const start = performance.now();
      if (start > deadline) throw new Error(`the server did not answer "${hello}" within ${opts.timeoutMs} ms`);
      const g = await greeting(serverAddress, SERVER_PORT, 1000);
      const at = performance.now();
      o.servicePolls++;
      if (g === hello) {
        o.answeredAt = at;
        break;
      }
      if (g === undefined) o.serverDownAt ??= at;
      await sleep(Math.max(0, opts.pollMs - (performance.now() - start)));
    }
  };
  const guard = (p: Promise<void>) =>
    p.catch((e: unknown) => {
      failed ??= e as Error;
    });
  await Promise.all([guard(api()), guard(service())]);
  if (failed) throw failed;
  return o as Observation;
}

/** Reconciles so far by result (strata_reconcile_total of this controller). */
async function reconcileCounts(h: ControllerHandle): Promise<Record<string, number>> {
  const m = await h.controller.metrics.reconciles.get();
  const out: Record<string, number> = {};
  for (const v of m.values) out[String(v.labels.result)] = (out[String(v.labels.result)] ?? 0) + v.value;
  return out;
}

/** Sum of strata_reconcile_duration_seconds over every result, in seconds. */
async function reconcileSeconds(h: ControllerHandle): Promise<number> {
  const m = await h.controller.metrics.reconcileDuration.get();
  return m.values.filter((v) => v.metricName === 'strata_reconcile_duration_seconds_sum').reduce((a, v) => a + v.value, 0);
}

function diffCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) if ((b[k] ?? 0) - (a[k] ?? 0) !== 0) out[k] = (b[k] ?? 0) - (a[k] ?? 0);
  return out;
}

function loginsByHost(testnet: Testnet): Record<string, number> {
  return Object.fromEntries(testnet.hosts.map((h) => [h.name, sshLogins({ ...testnet, hosts: [h] })]));
}

/** Pid of every service instance, `machine/service`, from the machines (one SSH round each). */
export async function pidsOf(stateDir: string): Promise<Map<string, number>> {
  const report = await deploymentStatus(DEPLOYMENT, contextFor({ stateDir }));
  const out = new Map<string, number>();
  for (const m of report.machines) {
    if (!m.reachable) throw new Error(`machine ${m.machine} unreachable: ${m.error}`);
    for (const i of m.items) if (i.pid !== undefined) out.set(`${m.machine}/${i.name}`, i.pid);
  }
  return out;
}
