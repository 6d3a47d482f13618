import type { LatencyRun } from './latency-run.ts';
import type { PathKind } from './latency-setup.ts';
import type { SystemInfo } from './report.ts';
import { summarise, type Summary } from './stats.ts';

/** bench/results/latency.json and the table printed from it. */

export interface LatencyOptions {
  runs: number;
  warmup: number;
  subnet: string;
  pollMs: number;
  settleMs: number;
  timeoutMs: number;
  /** Set only for the experiment with another watch debounce. */
  watchDebounceMs?: number;
  keep: boolean;
  out: string;
}

interface FigureDef {
  key: string;
  label: string;
  unit: 'ms' | 'count' | 'bool';
  value: (r: LatencyRun) => number | undefined;
}

const b = (v: boolean) => (v ? 1 : 0);
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, x) => a + x, 0);

/** Rows of the table, in order; a row is left out for a path where no run has a value. */
export const FIGURES: FigureDef[] = [
  { key: 'deployedMs', label: 'commit → deployed (API reports the sha AND the server answers)', unit: 'ms', value: (r) => r.deployedMs },
  { key: 'webhookMs', label: '  webhook POST → 202', unit: 'ms', value: (r) => r.webhookMs },
  { key: 'firstRefEventMs', label: '  first chokidar event on refs/ (negative: before git commit returned)', unit: 'ms', value: (r) => r.firstRefEventMs },
  { key: 'watchFiredMs', label: '  controller\'s watch callback (after its debounce)', unit: 'ms', value: (r) => r.watchFiredMs },
  { key: 'reconcileStartMs', label: '  trigger: commit → reconcile start', unit: 'ms', value: (r) => r.reconcileStartMs },
  { key: 'syncMs', label: '  sync (webhook: fetch over HTTP; watch: resolve the branch)', unit: 'ms', value: (r) => r.syncMs },
  { key: 'loadPlanMs', label: '  load models from the commit + plan', unit: 'ms', value: (r) => r.loadPlanMs },
  { key: 'applyMs', label: '  apply (2 steps on test2), until the reconcile ended', unit: 'ms', value: (r) => r.applyMs },
  { key: 'applyUntilFirstStepMs', label: '    until a step runs (SSH connect, lock, checks; ±poll)', unit: 'ms', value: (r) => r.applyUntilFirstStepMs },
  { key: 'applyUntilAnswerMs', label: '    until the new greeting answers (+ deactivate, activate)', unit: 'ms', value: (r) => r.applyUntilAnswerMs },
  { key: 'applyAfterAnswerMs', label: '    answer → reconcile end (readiness, commit, unlock)', unit: 'ms', value: (r) => r.applyAfterAnswerMs },
  { key: 'reconcileMetricMs', label: '  (cross-check: strata_reconcile_duration_seconds of the run)', unit: 'ms', value: (r) => r.reconcileMetricMs },
  { key: 'pollLagMs', label: '  reconcile end → API poll sees it', unit: 'ms', value: (r) => r.pollLagMs },
  { key: 'answeredMs', label: 'commit → server answers the new greeting', unit: 'ms', value: (r) => r.answeredMs },
  { key: 'outageMs', label: '  server not answering (old one stopped → new one answers; ±poll)', unit: 'ms', value: (r) => (r.serverDownMs === undefined ? undefined : Math.round((r.answeredMs - r.serverDownMs) * 10) / 10) },
  { key: 'apiAppliedMs', label: 'commit → API reports lastAppliedRevision = sha', unit: 'ms', value: (r) => r.apiAppliedMs },
  { key: 'gitCommitMs', label: '(git commit, before t0 for the webhook path)', unit: 'ms', value: (r) => r.gitCommitMs },
  { key: 'gitPushMs', label: '(git push, ends at t0)', unit: 'ms', value: (r) => r.gitPushMs },
  { key: 'steps', label: 'plan steps (expected 2: deactivate + activate server)', unit: 'count', value: (r) => r.steps?.length },
  { key: 'sshLogins', label: 'SSH logins during the run (expected 1, on test2)', unit: 'count', value: (r) => sum(r.sshLogins) },
  { key: 'reconcilesApplied', label: 'reconciles that applied (expected 1)', unit: 'count', value: (r) => r.reconciles['applied'] ?? 0 },
  { key: 'reconcilesOther', label: 'other reconciles (this controller + the idle one; expected 0)', unit: 'count', value: (r) => sum(r.reconciles) - (r.reconciles['applied'] ?? 0) + r.otherReconciles },
  { key: 'gitFetchRequests', label: 'HTTP requests of the controller\'s fetch', unit: 'count', value: (r) => r.gitFetchRequests },
  { key: 'clientPidsUnchanged', label: 'clients kept their pids, server has a new one', unit: 'bool', value: (r) => b(r.clientPidsUnchanged && r.serverPidChanged) },
  { key: 'clientsRelay', label: 'both clients relay the new greeting', unit: 'bool', value: (r) => b(r.clientsRelay) },
];

export type PathSummary = Record<string, Summary>;

export function summarisePath(runs: LatencyRun[]): PathSummary {
  const out: PathSummary = {};
  for (const f of FIGURES) {
    const values = runs.map(f.value).filter((v): v is number => v !== undefined);
    if (values.length) out[f.key] = summarise(values);
  }
  return out;
}

export interface LatencyResults {
  format: 'strata-bench-latency/1';
  system: SystemInfo;
  options: Omit<LatencyOptions, 'out' | 'keep'>;
  setup: Record<string, number | string>;
  summary: Record<PathKind, PathSummary>;
  runs: LatencyRun[];
  warmups: LatencyRun[];
  /** Log lines of level warn and above from either controller. */
  controllerWarnings: string[];
  leaks: { listeners: string[] };
}

function fmt(n: number | undefined, unit: FigureDef['unit']): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (unit === 'ms') return Math.abs(n) >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`;
  if (unit === 'bool') return n === 1 ? 'yes' : n === 0 ? 'no' : n.toFixed(2);
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function cell(s: Summary | undefined, unit: FigureDef['unit']): string {
  if (!s) return '–';
  const m = fmt(s.median, unit);
  return s.min === s.max ? m : `${m} (${fmt(s.min, unit)} – ${fmt(s.max, unit)})`;
}

export function renderLatencyTable(r: LatencyResults): string {
  const s = r.system;
  const n = { webhook: r.runs.filter((x) => x.path === 'webhook').length, watch: r.runs.filter((x) => x.path === 'watch').length };
  const lines = [
    `strata commit-to-deployed latency — ${s.date}, commit ${s.commit || 'unknown'}`,
    `machine: ${s.hostname}, ${s.nproc} CPUs (${s.cpu}), ${s.memTotal} RAM; node ${s.node}; ${s.os}, kernel ${s.kernel}`,
    `load average (1 min): ${s.loadAvg.start.toFixed(2)} at start, ${s.loadAvg.end?.toFixed(2) ?? '?'} at end`,
    `hello-world (server on test2, clients on test1, test3) on 3 SSH test hosts; change: the server's GREETING; polls every ${r.options.pollMs} ms`,
    ...(r.options.watchDebounceMs !== undefined ? [`EXPERIMENT: the watch debounce is ${r.options.watchDebounceMs} ms (not what sourceFor gives)`] : []),
    `median (min – max) of ${n.webhook} webhook and ${n.watch} watch runs, alternating, after ${r.options.warmup} warm-up run(s) of each; times since the commit (t0)`,
    '',
  ];
  const rows = FIGURES.map((f) => [f.label, cell(r.summary.webhook[f.key], f.unit), cell(r.summary.watch[f.key], f.unit)]);
  const head = ['figure', '(a) webhook', '(b) local watch'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  lines.push(`  ${head.map((h, i) => h.padEnd(w[i]!)).join('  ')}`);
  lines.push(`  ${w.map((x) => '-'.repeat(x)).join('  ')}`);
  for (const row of rows) lines.push(`  ${row.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')}`);
  lines.push('', 'setup (not in the figures):');
  for (const [k, v] of Object.entries(r.setup)) lines.push(`  ${k}: ${typeof v === 'number' ? fmt(v, 'ms') : v}`);
  if (r.controllerWarnings.length) lines.push('', `controller warnings: ${r.controllerWarnings.length} (in the JSON)`);
  lines.push('', r.leaks.listeners.length ? `LEAK: still listening after teardown: ${r.leaks.listeners.join(', ')}` : 'teardown: nothing left listening on the test subnet');
  return `${lines.join('\n')}\n`;
}
