import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.ts';
import { generateScaleModel, type ScaleModel } from './generate.ts';

/**
 * The plan-at-scale figures: a generated model of many `local` machines, planned in child
 * processes (one measurement each, so maxRSS is that measurement's own): the phases apart,
 * planDeployment from an empty state, and planDeployment against a recorded generation of
 * the same manifest (nothing to do: the re-plan a CI job or the controller's poll makes).
 */

export interface PhasesResult {
  loadValidateMs: number;
  resolveMs: number;
  hashMs: number;
  hashCalls: number;
  distinctArtifacts: number;
  readStateMs: number;
  diffMs: number;
  renderMarkdownMs: number;
  markdownBytes: number;
  renderJsonMs: number;
  jsonBytes: number;
  machines: number;
  items: number;
  steps: number;
  peakRssMb: number;
}

export interface PlanResult {
  planMs: number;
  steps: number;
  empty: boolean;
  baselineRssMb: number;
  peakRssMb: number;
  heapUsedMb: number;
}

export interface PlanScaleRun {
  run: number;
  phases: PhasesResult;
  /** The same phases against the recorded generation (reading it, and a diff that finds nothing). */
  phasesRecorded: PhasesResult;
  fromEmpty: PlanResult;
  againstRecorded: PlanResult;
}

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CHILD = path.join(BENCH_DIR, 'planChild.ts');

export function generatePlanModel(dir: string, o: { machines: number; instances: number; replicas: number; artifacts: number }): ScaleModel {
  return generateScaleModel({ dir, ...o });
}

/** Records generation 1 of the model in `recordedStateDir` (in a child, like the rest). */
export async function recordScaleState(model: ScaleModel, recordedStateDir: string): Promise<void> {
  await runChild(['record', model.rootFile, recordedStateDir]);
}

export async function planScaleRun(run: number, model: ScaleModel, emptyStateDir: string, recordedStateDir: string): Promise<PlanScaleRun> {
  const phases = (await runChild(['phases', model.rootFile, emptyStateDir])) as PhasesResult;
  const phasesRecorded = (await runChild(['phases', model.rootFile, recordedStateDir])) as PhasesResult;
  const fromEmpty = (await runChild(['plan', model.rootFile, emptyStateDir])) as PlanResult;
  const againstRecorded = (await runChild(['plan', model.rootFile, recordedStateDir])) as PlanResult;
  if (!againstRecorded.empty) {
    // Not fatal (src/ may be edited while the benchmark runs, between recording and planning), but reported.
    process.stderr.write(`bench: WARNING: planning against the recorded generation of the same model gave ${againstRecorded.steps} steps, not an empty plan\n`);
  }
  return { run, phases, phasesRecorded, fromEmpty, againstRecorded };
}

/** Runs planChild.ts with the same loader flags as this process; resolves with its JSON line. */
function runChild(args: string[], timeoutMs = 15 * 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: path.dirname(BENCH_DIR) } /* where --import tsx resolves */);
    const cleanup = onCleanup(`plan child pid ${child.pid}`, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      cleanup.forget();
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      cleanup.forget();
      if (code !== 0) return reject(new Error(`planChild ${args[0]} failed (${signal ?? `exit ${code}`}):\n${stderr.trim()}`));
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`planChild ${args[0]} printed no JSON: ${stdout.slice(0, 500)}\n${stderr.slice(0, 500)}`));
      }
    });
  });
}
