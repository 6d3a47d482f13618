import type { BenchOptions } from './args.ts';
import type { DeployRun } from './deploy.ts';
import type { PlanScaleRun } from './planScale.ts';
import type { ScaleModel } from './generate.ts';
import type { Calibration } from './calibrate.ts';
import { summarise, type Summary } from './stats.ts';

/** The results file (bench/results/latest.json) and the table printed from it. */
export interface SystemInfo {
  date: string;
  hostname: string;
  nproc: number;
  cpu: string;
  memTotal: string;
  freeH: string;
  node: string;
  os: string;
  kernel: string;
  /** 1-minute load average when the benchmark started and when it ended (the machine may be shared). */
  loadAvg: { start: number; end?: number };
  /** strata's git commit the figures were measured on. */
  commit: string;
}

export interface Figure {
  key: string;
  label: string;
  unit: 'ms' | 'bytes' | 'count' | 'MiB' | 'bool';
  summary: Summary;
}

export interface Section {
  title: string;
  figures: Figure[];
}

export interface Results {
  format: 'strata-bench/1';
  system: SystemInfo;
  options: Omit<BenchOptions, 'out' | 'keep'>;
  sections: Section[];
  deploy?: { runs: DeployRun[]; calibration?: Calibration };
  plan?: { model: Omit<ScaleModel, 'rootFile'>; recordedGenerationBytes?: number; runs: PlanScaleRun[] };
  leaks: { listeners: string[] };
}

function fig(key: string, label: string, unit: Figure['unit'], values: number[]): Figure {
  return { key, label, unit, summary: summarise(values) };
}

const b = (v: boolean) => (v ? 1 : 0);

export function deploySection(opts: BenchOptions, runs: DeployRun[]): Section[] {
  const v = (f: (r: DeployRun) => number) => runs.map(f);
  const first: Figure[] = [
    fig('first.applyMs', 'first deployment: apply wall time', 'ms', v((r) => r.first.applyMs)),
    fig('first.bytesSent', '  bytes sent (ApplyResult.bytesSent)', 'bytes', v((r) => r.first.bytesSent)),
    fig('first.steps', '  steps', 'count', v((r) => r.first.steps)),
    fig('first.uploads', '  artifacts uploaded', 'count', v((r) => r.first.uploads)),
    fig('first.sshLogins', '  SSH logins (one per machine expected)', 'count', v((r) => r.first.sshLogins)),
    fig('first.prepareMs', '  connect + runtime install + lock + upload', 'ms', v((r) => r.first.breakdown.prepareMs)),
    fig('first.stepsMs', '  activation steps (chain of dependsOn per host)', 'ms', v((r) => r.first.breakdown.stepsMs)),
    fig('first.stepMedianMs', '  one activate step (median of steps)', 'ms', v((r) => r.first.breakdown.stepMedianMs)),
    fig('first.commitMs', '  commit (record generation on machines + controller)', 'ms', v((r) => r.first.breakdown.commitMs)),
    fig('first.finishMs', '  unlock + close connections', 'ms', v((r) => r.first.breakdown.finishMs)),
    fig('first.planMs', '  (plan before it, not in the apply time)', 'ms', v((r) => r.first.planMs)),
  ];
  const none: Figure[] = [
    fig('noChange.planMs', 'no change: plan + apply (empty plan, skipped as the CLI does)', 'ms', v((r) => r.noChange.planMs)),
    fig('noChange.empty', '  plan empty (1 = yes)', 'bool', v((r) => b(r.noChange.empty))),
    fig('noChange.sshLogins', '  SSH logins', 'count', v((r) => r.noChange.sshLogins)),
    fig('noChange.apiApplyMs', '  applyDeployment(empty plan) via the API', 'ms', v((r) => r.noChange.apiApplyMs)),
    fig('noChange.apiSshLogins', '  its SSH logins', 'count', v((r) => r.noChange.apiSshLogins)),
    fig('noChange.apiRecordedGeneration', '  it recorded a new generation (1 = yes)', 'bool', v((r) => b(r.noChange.apiRecordedGeneration))),
  ];
  const one: Figure[] = [
    fig('oneChange.applyMs', 'one-service change: apply wall time', 'ms', v((r) => r.oneChange.applyMs)),
    fig('oneChange.bytesSent', '  bytes sent', 'bytes', v((r) => r.oneChange.bytesSent)),
    fig('oneChange.steps', '  steps (deactivate + activate)', 'count', v((r) => r.oneChange.steps)),
    fig('oneChange.uploads', '  artifacts uploaded', 'count', v((r) => r.oneChange.uploads)),
    fig('oneChange.uploadMachines', '  machines uploaded to', 'count', v((r) => r.oneChange.uploadMachines)),
    fig('oneChange.sshLogins', '  SSH logins', 'count', v((r) => r.oneChange.sshLogins)),
    fig('oneChange.prepareMs', '  connect + lock + upload', 'ms', v((r) => r.oneChange.breakdown.prepareMs)),
    fig('oneChange.stepsMs', '  deactivate + activate steps', 'ms', v((r) => r.oneChange.breakdown.stepsMs)),
    fig('oneChange.commitMs', '  commit', 'ms', v((r) => r.oneChange.breakdown.commitMs)),
    fig('oneChange.finishMs', '  unlock + close', 'ms', v((r) => r.oneChange.breakdown.finishMs)),
    fig('oneChange.planMs', '  (plan before it, not in the apply time)', 'ms', v((r) => r.oneChange.planMs)),
  ];
  const setup: Figure[] = [
    fig('testnet.upMs', 'testnetUp (setup, not a figure of strata)', 'ms', v((r) => r.testnetUpMs)),
    fig('testnet.downMs', 'testnetDown', 'ms', v((r) => r.testnetDownMs)),
  ];
  const title = `Deployment on ${opts.hosts} SSH test hosts x ${opts.services} services (${opts.hosts * opts.services} services, ${opts.artifactKb} KiB filler each), ${runs.length} run(s)`;
  const out: Section[] = [{ title, figures: [...first, ...none, ...one, ...setup] }];
  const c = runs.find((r) => r.calibration)?.calibration;
  if (c) {
    out.push({
      title: 'What one step is made of (measured alone, against host1)',
      figures: [
        fig('cal.sshConnectMs', 'SSH connect + auth + first exec', 'ms', [c.sshConnectMs]),
        fig('cal.sshExecMs', 'exec round trip on an open connection', 'ms', [c.sshExecMs]),
        fig('cal.runtimeVerbMs', 'runtime verb (`status`): round trip + sh runtime.sh', 'ms', [c.runtimeVerbMs]),
        fig('cal.nodeListenMs', 'node server.js until it accepts connections', 'ms', [c.nodeListenMs]),
      ],
    });
  }
  return out;
}

export function planSection(model: ScaleModel, runs: PlanScaleRun[], recordedBytes?: number): Section {
  const v = (f: (r: PlanScaleRun) => number) => runs.map(f);
  return {
    title: `Plan at scale: ${model.instances} service instances (${model.services} services x ${model.instances / model.services}) on ${model.machines} local machines, ${model.artifacts} shared artifact dirs, ${(model.yamlBytes / 1024).toFixed(0)} KiB of YAML; ${runs.length} run(s), each in a fresh process`,
    figures: [
      fig('plan.loadValidateMs', 'load + validate (parse YAML, schemas, merge, checks)', 'ms', v((r) => r.phases.loadValidateMs)),
      fig('plan.resolveMs', 'resolve manifest (pure; artifacts hashed before)', 'ms', v((r) => r.phases.resolveMs)),
      fig('plan.hashMs', `artifact hashing (${runs[0]?.phases.hashCalls ?? '?'} sources, ${runs[0]?.phases.distinctArtifacts ?? '?'} dirs)`, 'ms', v((r) => r.phases.hashMs)),
      fig('plan.diffMs', 'diff + order steps (from nothing recorded)', 'ms', v((r) => r.phases.diffMs)),
      fig('plan.renderMarkdownMs', 'render plan as markdown (PR comment)', 'ms', v((r) => r.phases.renderMarkdownMs)),
      fig('plan.markdownBytes', '  markdown size', 'bytes', v((r) => r.phases.markdownBytes)),
      fig('plan.renderJsonMs', 'render plan as JSON (plan --out)', 'ms', v((r) => r.phases.renderJsonMs)),
      fig('plan.jsonBytes', '  JSON size', 'bytes', v((r) => r.phases.jsonBytes)),
      fig('plan.fromEmpty.planMs', 'planDeployment, nothing recorded (first plan)', 'ms', v((r) => r.fromEmpty.planMs)),
      fig('plan.fromEmpty.steps', '  steps', 'count', v((r) => r.fromEmpty.steps)),
      fig('plan.fromEmpty.peakRssMb', '  peak RSS of the process (maxRSS)', 'MiB', v((r) => r.fromEmpty.peakRssMb)),
      fig('plan.fromEmpty.baselineRssMb', '  RSS before planning (node + tsx + modules)', 'MiB', v((r) => r.fromEmpty.baselineRssMb)),
      fig('plan.fromEmpty.heapUsedMb', '  heapUsed after planning', 'MiB', v((r) => r.fromEmpty.heapUsedMb)),
      fig('plan.recorded.planMs', 'planDeployment against a recorded generation (no change)', 'ms', v((r) => r.againstRecorded.planMs)),
      ...(recordedBytes !== undefined ? [fig('plan.recorded.bytes', '  size of the recorded generation file', 'bytes', [recordedBytes])] : []),
      fig('plan.recorded.readStateMs', '  of which reading the recorded generation', 'ms', v((r) => r.phasesRecorded.readStateMs)),
      fig('plan.recorded.diffMs', '  of which the diff (finds nothing)', 'ms', v((r) => r.phasesRecorded.diffMs)),
      fig('plan.recorded.empty', '  plan empty (1 = yes)', 'bool', v((r) => (r.againstRecorded.empty ? 1 : 0))),
      fig('plan.recorded.peakRssMb', '  peak RSS of the process (maxRSS)', 'MiB', v((r) => r.againstRecorded.peakRssMb)),
      fig('plan.recorded.heapUsedMb', '  heapUsed after planning', 'MiB', v((r) => r.againstRecorded.heapUsedMb)),
    ],
  };
}

function fmt(n: number, unit: Figure['unit']): string {
  if (!Number.isFinite(n)) return 'n/a';
  switch (unit) {
    case 'ms':
      return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`;
    case 'bytes':
      return n >= 1048576 ? `${(n / 1048576).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
    case 'MiB':
      return `${n.toFixed(1)} MiB`;
    case 'bool':
      return n === 1 ? 'yes' : n === 0 ? 'no' : n.toFixed(2);
    default:
      return Number.isInteger(n) ? String(n) : n.toFixed(1);
  }
}

/** A plain-text table: figure, median, min–max (blank when every run gave the same value). */
export function renderTable(results: Results): string {
  const lines: string[] = [];
  const s = results.system;
  lines.push(`strata benchmark — ${s.date}, commit ${s.commit || 'unknown'}`);
  lines.push(`machine: ${s.hostname}, ${s.nproc} CPUs (${s.cpu}), ${s.memTotal} RAM; node ${s.node}; ${s.os}, kernel ${s.kernel}`);
  lines.push(`load average (1 min): ${s.loadAvg.start.toFixed(2)} at start, ${s.loadAvg.end?.toFixed(2) ?? '?'} at end`);
  for (const sec of results.sections) {
    lines.push('', sec.title);
    const rows = sec.figures.map((f) => {
      const { median, min, max } = f.summary;
      const range = min === max || f.summary.runs.length < 2 ? '' : `${fmt(min, f.unit)} – ${fmt(max, f.unit)}`;
      return [f.label, fmt(median, f.unit), range];
    });
    const w0 = Math.max(6, ...rows.map((r) => r[0]!.length));
    const w1 = Math.max(6, ...rows.map((r) => r[1]!.length));
    lines.push(`  ${'figure'.padEnd(w0)}  ${'median'.padStart(w1)}  min – max`);
    lines.push(`  ${'-'.repeat(w0)}  ${'-'.repeat(w1)}  ${'-'.repeat(20)}`);
    for (const [a, m, r] of rows) lines.push(`  ${a!.padEnd(w0)}  ${m!.padStart(w1)}  ${r}`);
  }
  lines.push('', results.leaks.listeners.length ? `LEAK: still listening after teardown: ${results.leaks.listeners.join(', ')}` : 'teardown: nothing left listening on the test subnet');
  return `${lines.join('\n')}\n`;
}
