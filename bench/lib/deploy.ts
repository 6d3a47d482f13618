import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { applyDeployment } from '../../src/api/apply.ts';
import type { Context } from '../../src/api/context.ts';
import { planDeployment } from '../../src/api/plan.ts';
import type { ApplyResult } from '../../src/apply/apply.ts';
import type { ApplyEvent } from '../../src/apply/events.ts';
import { isEmptyPlan } from '../../src/plan/diff.ts';
import type { Plan } from '../../src/plan/types.ts';
import { testnetDown, testnetUp, type Testnet } from '../../src/testnet/index.ts';
import { hostLayout } from '../../src/testnet/layout.ts';
import { calibrate, type Calibration } from './calibrate.ts';
import { onCleanup } from './cleanup.ts';
import { generateTestnetDeployment, writeFiller, type GeneratedService, type TestnetDeployment } from './generate.ts';
import { median, msSince, round1 } from './stats.ts';
import { contextFor } from '../../src/api/services.ts';

/**
 * One run of the deployment figures, on a testnet of its own: stand up the hosts, deploy from
 * a fresh state dir, apply again without change, change one service's filler and apply, tear
 * the hosts down. Only `applyDeployment` (and, separately, `planDeployment`) is inside a timer.
 */

/** Where the wall time of one apply went, from its events (ms since the apply started). */
export interface ApplyBreakdown {
  /** Connect + runtime install + lock + missing-artifact check + upload: until the first phase starts. */
  prepareMs: number;
  /** First phase start to the last step done. */
  stepsMs: number;
  /** Last step done to the commit event (the generation recorded on the machines and locally). */
  commitMs: number;
  /** Commit event to the end (unlock + closing the connections). */
  finishMs: number;
  /** Median / max duration of one step (activate or deactivate), as the step events report it. */
  stepMedianMs: number;
  stepMaxMs: number;
}

export interface ApplyFigures {
  planMs: number;
  /** Wall time around applyDeployment. */
  applyMs: number;
  bytesSent: number;
  steps: number;
  /** Artifacts uploaded, over every machine. */
  uploads: number;
  /** Machines that received an upload. */
  uploadMachines: number;
  /** SSH logins the hosts' sshd logged during the apply. */
  sshLogins: number;
  breakdown: ApplyBreakdown;
}

export interface NoChangeFigures {
  /** planDeployment + isEmptyPlan (the CLI's `strata apply` path: nothing applied when empty). */
  planMs: number;
  empty: boolean;
  steps: number;
  sshLogins: number;
  /** applyDeployment called with the empty plan anyway (the library API does not refuse it). */
  apiApplyMs: number;
  apiSshLogins: number;
  apiBytesSent: number;
  /** Whether that call recorded a new generation (it does, in the code measured). */
  apiRecordedGeneration: boolean;
}

export interface DeployRun {
  run: number;
  testnetUpMs: number;
  testnetDownMs: number;
  first: ApplyFigures;
  servicesAnswering: number;
  noChange: NoChangeFigures;
  oneChange: ApplyFigures & { changedService: string; uploadedTo: string[] };
  calibration?: Calibration;
}

export async function deployRun(opts: {
  run: number;
  dir: string;
  hosts: number;
  servicesPerHost: number;
  artifactKb: number;
  subnet: string;
  calibrate: boolean;
  log: (msg: string) => void;
}): Promise<DeployRun> {
  const { log } = opts;
  const dep = generateTestnetDeployment({ dir: opts.dir, hosts: opts.hosts, servicesPerHost: opts.servicesPerHost, artifactKb: opts.artifactKb });
  const ctx: Context = contextFor({ stateDir: path.join(opts.dir, 'state') });

  let t0 = performance.now();
  const teardown = onCleanup(`testnet ${dep.testnetDir}`, async () => {
    await testnetDown(dep.testnetDir);
  });
  let testnet: Testnet;
  try {
    testnet = await testnetUp({ dir: dep.testnetDir, machines: dep.machines, subnet: opts.subnet });
  } catch (e) {
    await teardown.run();
    throw e;
  }
  const testnetUpMs = msSince(t0);
  log(`run ${opts.run}: ${testnet.hosts.length} test hosts up in ${testnetUpMs} ms`);

  let result: Omit<DeployRun, 'testnetDownMs'>;
  try {
    // First deployment: nothing recorded, nothing on the hosts.
    const first = await planAndApply(dep, ctx, testnet);
    const servicesAnswering = await countAnswering(dep.services, testnet);
    log(`run ${opts.run}: first deployment ${first.applyMs} ms, ${first.steps} steps, ${first.uploads} uploads; ${servicesAnswering}/${dep.services.length} services answer`);
    if (servicesAnswering !== dep.services.length) throw new Error(`only ${servicesAnswering} of ${dep.services.length} services answer after the first deployment`);

    const noChange = await applyUnchanged(dep, ctx, testnet);
    log(`run ${opts.run}: no change: plan ${noChange.planMs} ms (empty: ${noChange.empty}, ssh logins: ${noChange.sshLogins})`);

    // One service changes: a new filler in the middle of host1's chain.
    const changed = dep.services[Math.floor((opts.servicesPerHost - 1) / 2)]!;
    writeFiller(changed.fillerFile, opts.artifactKb);
    const one = await planAndApply(dep, ctx, testnet);
    const oneChange = { ...one, changedService: changed.name, uploadedTo: one.uploadedTo };
    log(`run ${opts.run}: one-service change ${one.applyMs} ms, ${one.steps} steps, ${one.uploads} upload(s) to ${one.uploadedTo.join(', ') || 'nothing'}`);

    const calibration = opts.calibrate ? await calibrate(testnet, opts.dir) : undefined;
    result = { run: opts.run, testnetUpMs, first, servicesAnswering, noChange, oneChange, ...(calibration ? { calibration } : {}) };
  } finally {
    t0 = performance.now();
    await teardown.run();
  }
  const testnetDownMs = msSince(t0);
  log(`run ${opts.run}: test hosts down in ${testnetDownMs} ms`);
  return { ...result, testnetDownMs };
}

async function planAndApply(dep: TestnetDeployment, ctx: Context, testnet: Testnet): Promise<ApplyFigures & { uploadedTo: string[] }> {
  let t0 = performance.now();
  const plan = await planDeployment(dep.rootFile, ctx);
  const planMs = msSince(t0);
  if (isEmptyPlan(plan)) throw new Error('expected a plan with steps, got an empty one');
  const logins0 = sshLogins(testnet);
  const events = recorder();
  t0 = performance.now();
  const r = await applyDeployment(plan, { ...ctx, onEvent: events.onEvent });
  const applyMs = msSince(t0);
  const uploadedTo = Object.keys(r.uploaded).filter((m) => r.uploaded[m]!.length > 0).sort();
  return {
    planMs,
    applyMs,
    bytesSent: r.bytesSent,
    steps: r.steps,
    uploads: Object.values(r.uploaded).reduce((n, l) => n + l.length, 0),
    uploadMachines: uploadedTo.length,
    uploadedTo,
    sshLogins: sshLogins(testnet) - logins0,
    breakdown: events.breakdown(t0, applyMs),
  };
}

async function applyUnchanged(dep: TestnetDeployment, ctx: Context, testnet: Testnet): Promise<NoChangeFigures> {
  const logins0 = sshLogins(testnet);
  let t0 = performance.now();
  const plan = await planDeployment(dep.rootFile, ctx);
  const empty = isEmptyPlan(plan);
  let result: ApplyResult | undefined;
  if (!empty) result = await applyDeployment(plan, ctx); // what `strata apply` does: only a non-empty plan is applied
  const planMs = msSince(t0);
  const sshAfterPlan = sshLogins(testnet) - logins0;

  // The library API on the same empty plan: it should not touch a machine either.
  const apiPlan: Plan = result ? await planDeployment(dep.rootFile, ctx) : plan;
  const logins1 = sshLogins(testnet);
  t0 = performance.now();
  const api = await applyDeployment(apiPlan, ctx);
  const apiApplyMs = msSince(t0);
  return {
    planMs,
    empty,
    steps: plan.steps.length,
    sshLogins: sshAfterPlan,
    apiApplyMs,
    apiSshLogins: sshLogins(testnet) - logins1,
    apiBytesSent: api.bytesSent,
    apiRecordedGeneration: api.generation !== apiPlan.basis.generation,
  };
}

/** Timestamps of apply events, turned into an ApplyBreakdown. */
function recorder() {
  let firstPhase: number | undefined;
  let lastStepDone: number | undefined;
  let commit: number | undefined;
  const stepMs: number[] = [];
  const onEvent = (e: ApplyEvent) => {
    const now = performance.now();
    if (e.kind === 'phase') firstPhase ??= now;
    else if (e.kind === 'step' && e.status === 'done') {
      lastStepDone = now;
      if (e.ms !== undefined) stepMs.push(e.ms);
    } else if (e.kind === 'commit') commit = now;
  };
  const breakdown = (t0: number, totalMs: number): ApplyBreakdown => {
    const at = (t: number | undefined) => (t === undefined ? undefined : t - t0);
    const p = at(firstPhase) ?? 0;
    const s = at(lastStepDone) ?? p;
    const c = at(commit) ?? s;
    return {
      prepareMs: round1(p),
      stepsMs: round1(s - p),
      commitMs: round1(c - s),
      finishMs: round1(totalMs - c),
      stepMedianMs: round1(median(stepMs)),
      stepMaxMs: round1(stepMs.length ? Math.max(...stepMs) : NaN),
    };
  };
  return { onEvent, breakdown };
}

/** SSH logins so far, over every host: the "Accepted publickey" lines sshd writes to its log. */
export function sshLogins(testnet: Testnet): number {
  let n = 0;
  for (const h of testnet.hosts) {
    const log = hostLayout(h.dir).log;
    if (!existsSync(log)) continue;
    n += readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('Accepted publickey')).length;
  }
  return n;
}

/** How many services answer a TCP connection on their machine's address with their own name. */
async function countAnswering(services: GeneratedService[], testnet: Testnet): Promise<number> {
  const address = new Map(testnet.hosts.map((h) => [h.name, h.address]));
  const answers = await Promise.all(services.map((s) => greeting(address.get(s.machine)!, s.port).then((g) => g === s.name)));
  return answers.filter(Boolean).length;
}

export function greeting(host: string, port: number, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const sock = net.connect({ host, port });
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (buf += d));
    sock.on('end', () => done(buf.trim()));
    sock.on('error', () => done(undefined));
  });
}
