/**
 * `npm run bench:profile`: where strata's first deployment spends its time and CPU, next to the
 * floor's (plain OpenSSH) on the same fresh test hosts. For each run it prints wall time, the
 * CPU the whole machine spent (from /proc/stat, so sshd, the shells and the services count),
 * the controller's own CPU, and strata's timeline (lock, upload, first and last step, commit).
 * A tool for finding what to make faster; the figures to quote come from `bench:compare`.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ApplyEvent } from '../src/apply/events.ts';
import { applyDeployment } from '../src/api/apply.ts';
import { planDeployment } from '../src/api/plan.ts';
import { testnetDown, testnetUp } from '../src/testnet/index.ts';
import { installSignalHandlers, onCleanup, runAllCleanups } from './lib/cleanup.ts';
import { closeMasters, floorDeploy, writeKnownHosts } from './lib/compareTools.ts';
import { generateTestnetDeployment } from './lib/generate.ts';
import { median, msSince, round1 } from './lib/stats.ts';
import { contextFor } from '../src/api/services.ts';

const USAGE = `npm run bench:profile -- [--hosts N] [--services S] [--artifact-kb K] [--runs R] [--service perl|node] [--subnet 127.0.63] [--cpu-profile FILE]
  --cpu-profile FILE   write a V8 CPU profile of the controller during strata's first run (open it in Chrome DevTools)`;

/** The controller's own CPU profile around f, written to FILE (.cpuprofile, for DevTools). */
async function profiled<T>(file: string | undefined, f: () => Promise<T>): Promise<T> {
  if (!file) return f();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await f();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

/** Busy CPU time of the whole machine so far, in ms (all cores). */
function machineCpuMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 1000) / 100;
}

function controllerCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Processes forked on the machine so far (the `processes` line of /proc/stat). */
function machineForks(): number {
  return Number(/^processes (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
}

interface Sample {
  wallMs: number;
  forks: number;
  machineCpuMs: number;
  controllerCpuMs: number;
  marks: Record<string, number>;
}

/** `mark(name)` records when NAME first happened; `mark(name, true)` when it last did. */
type Mark = (name: string, last?: boolean) => void;

async function measure(f: (mark: Mark) => Promise<void>): Promise<Sample> {
  const marks: Record<string, number> = {};
  const m0 = machineCpuMs();
  const f0 = machineForks();
  const c0 = controllerCpuMs();
  const t0 = performance.now();
  await f((name, last) => {
    if (last || marks[name] === undefined) marks[name] = round1(msSince(t0));
  });
  return { wallMs: round1(msSince(t0)), forks: machineForks() - f0, machineCpuMs: round1(machineCpuMs() - m0), controllerCpuMs: round1(controllerCpuMs() - c0), marks };
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: { hosts: { type: 'string' }, services: { type: 'string' }, 'artifact-kb': { type: 'string' }, runs: { type: 'string' }, subnet: { type: 'string' }, service: { type: 'string' }, 'cpu-profile': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (v.help) {
    console.log(USAGE);
    return;
  }
  const hosts = Number(v.hosts ?? 5);
  const services = Number(v.services ?? 4);
  const artifactKb = Number(v['artifact-kb'] ?? 1024);
  const runs = Number(v.runs ?? 3);
  for (const [name, n] of Object.entries({ hosts, services, 'artifact-kb': artifactKb, runs })) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive whole number, not ${String(n)}\n${USAGE}`);
  }
  const subnet = v.subnet ?? '127.0.63';
  const service = v.service ?? 'perl';
  if (service !== 'perl' && service !== 'node') throw new Error(`--service: perl or node, not ${service}\n${USAGE}`);
  installSignalHandlers();
  const work = mkdtempSync(path.join(os.tmpdir(), 'strata-profile-'));
  onCleanup(`rm ${work}`, () => rmSync(work, { recursive: true, force: true }));
  const samples: Record<'strata' | 'floor', Sample[]> = { strata: [], floor: [] };
  try {
    for (let r = 0; r < runs; r++) {
      for (const tool of r % 2 ? (['floor', 'strata'] as const) : (['strata', 'floor'] as const)) {
        const dir = path.join(work, `${tool}-${r}`);
        const dep = generateTestnetDeployment({ dir, hosts, servicesPerHost: services, artifactKb, basePort: 43000, chain: false, service });
        const down = onCleanup(`testnet ${dep.testnetDir}`, async () => {
          await testnetDown(dep.testnetDir);
        });
        try {
          const testnet = await testnetUp({ dir: dep.testnetDir, machines: dep.machines, subnet });
          const knownHosts = path.join(dir, 'known_hosts');
          writeKnownHosts(testnet, knownHosts);
          const controlDir = path.join(dir, 'cm');
          mkdirSync(controlDir, { recursive: true });
          let sample: Sample;
          if (tool === 'strata') {
            sample = await measure(async (mark) => {
              const onEvent = (e: ApplyEvent) => {
                if (e.kind === 'lock') mark('lock');
                else if (e.kind === 'upload') mark('first upload');
                else if (e.kind === 'phase') mark(`phase ${e.phase}`);
                else if (e.kind === 'step' && e.status === 'done') {
                  mark('first step done');
                  mark('last step done', true);
                } else if (e.kind === 'commit') mark('commit done');
              };
              const ctx = contextFor({ stateDir: path.join(dir, 'state'), onEvent });
              const plan = await planDeployment(dep.rootFile, ctx);
              mark('planned');
              await profiled(r === 0 ? v['cpu-profile'] : undefined, () => applyDeployment(plan, ctx));
              mark('applied');
            });
          } else {
            sample = await measure(async () => {
              await floorDeploy({ testnet, knownHosts, controlDir }, dep, dep.services);
            });
            await closeMasters(controlDir);
          }
          samples[tool].push(sample);
          console.log(`${tool} run ${r + 1}: wall ${sample.wallMs} ms, machine CPU ${sample.machineCpuMs} ms, ${sample.forks} forks, controller CPU ${sample.controllerCpuMs} ms ${JSON.stringify(sample.marks)}`);
        } finally {
          await down.run();
        }
      }
    }
    for (const tool of ['strata', 'floor'] as const) {
      const s = samples[tool];
      console.log(`${tool}: median wall ${median(s.map((x) => x.wallMs))} ms, machine CPU ${median(s.map((x) => x.machineCpuMs))} ms, ${median(s.map((x) => x.forks))} forks, controller CPU ${median(s.map((x) => x.controllerCpuMs))} ms`);
    }
  } finally {
    await runAllCleanups();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
