/**
 * `npm run bench`: figures for strata's deployment path (real sshd test hosts on loopback
 * addresses) and for planning at scale. Prints a table, writes bench/results/latest.json.
 * Not a test: it asserts only what the figures depend on (the deployment works, the no-change
 * plan is empty). See docs/benchmarks.md.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseBenchArgs, USAGE, type BenchOptions } from './lib/args.ts';
import { installSignalHandlers, onCleanup, runAllCleanups } from './lib/cleanup.ts';
import { deployRun, type DeployRun } from './lib/deploy.ts';
import { generatePlanModel, planScaleRun, recordScaleState, type PlanScaleRun } from './lib/planScale.ts';
import { deploySection, planSection, renderTable, type Results, type Section } from './lib/report.ts';
import { listenersOn, systemInfo } from './lib/system.ts';

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

async function main(): Promise<number> {
  let opts: BenchOptions | undefined;
  try {
    opts = parseBenchArgs(process.argv.slice(2));
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

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'strata-bench-'));
  onCleanup(`temp dir ${tmp}`, () => {
    if (opts.keep) log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  });
  log(`working in ${tmp}`);

  const deployRuns: DeployRun[] = [];
  const planRuns: PlanScaleRun[] = [];
  let model: ReturnType<typeof generatePlanModel> | undefined;
  let recordedBytes: number | undefined;
  try {
    if (!opts.skipDeploy) {
      for (let run = 1; run <= opts.runs; run++) {
        const dir = path.join(tmp, `deploy-${run}`);
        deployRuns.push(
          await deployRun({ run, dir, hosts: opts.hosts, servicesPerHost: opts.services, artifactKb: opts.artifactKb, subnet: opts.subnet, calibrate: run === 1, log }),
        );
        if (!opts.keep) rmSync(dir, { recursive: true, force: true });
      }
    }
    if (!opts.skipPlan) {
      const dir = path.join(tmp, 'scale');
      log(`generating a model of ${opts.planInstances} instances on ${opts.planMachines} machines`);
      model = generatePlanModel(path.join(dir, 'models'), {
        machines: opts.planMachines,
        instances: opts.planInstances,
        replicas: opts.planReplicas,
        artifacts: opts.planArtifacts,
      });
      for (let run = 1; run <= opts.planRuns; run++) {
        // Recorded afresh for every run, so recording and planning see the same code.
        const recorded = path.join(dir, `state-recorded-${run}`);
        await recordScaleState(model, recorded);
        recordedBytes ??= fileSize(path.join(recorded, 'deployments', model.deployment, 'generations', '1.json'));
        const r = await planScaleRun(run, model, path.join(dir, 'state-empty'), recorded);
        rmSync(recorded, { recursive: true, force: true });
        log(`plan run ${run}: load+validate ${r.phases.loadValidateMs} ms, resolve ${r.phases.resolveMs} ms, diff ${r.phases.diffMs} ms; planDeployment ${r.fromEmpty.planMs} ms, peak RSS ${r.fromEmpty.peakRssMb} MiB; against recorded ${r.againstRecorded.planMs} ms`);
        planRuns.push(r);
      }
    }
  } finally {
    await runAllCleanups();
  }

  system.loadAvg.end = Math.round(os.loadavg()[0]! * 100) / 100;
  const sections: Section[] = [];
  if (deployRuns.length) sections.push(...deploySection(opts, deployRuns));
  if (model && planRuns.length) sections.push(planSection(model, planRuns, recordedBytes));
  const { out, keep: _keep, ...options } = opts;
  const { rootFile: _root, ...modelInfo } = model ?? { rootFile: '' };
  const results: Results = {
    format: 'strata-bench/1',
    system,
    options,
    sections,
    ...(deployRuns.length ? { deploy: { runs: deployRuns, calibration: deployRuns.find((r) => r.calibration)?.calibration } } : {}),
    ...(model ? { plan: { model: modelInfo as Omit<NonNullable<typeof model>, 'rootFile'>, recordedGenerationBytes: recordedBytes, runs: planRuns } } : {}),
    leaks: { listeners: opts.skipDeploy ? [] : listenersOn(opts.subnet) },
  };
  process.stdout.write(renderTable(results));
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${out}`);
  return results.leaks.listeners.length ? 1 : 0;
}

function fileSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    process.stderr.write(`bench: failed: ${(e as Error).stack ?? String(e)}\n`);
    await runAllCleanups();
    process.exit(1);
  },
);
