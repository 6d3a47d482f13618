/**
 * `npm run bench:footprint`: resident memory (and CPU) of an idle `strata controller` watching
 * N machines (default 100). It stands up N sshd test hosts, commits a deployment of one small
 * service per host to a local Git repository, starts the real CLI (`node bin/strata.js
 * controller --config ...`) as its own process, waits until it has deployed every machine, then
 * samples the process's VmRSS once a second while it sits idle, drift-probing every machine
 * every --probe seconds. See docs/performance.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { procStat } from '../src/lib/proc.ts';
import { testnetDown, testnetUp } from '../src/testnet/index.ts';
import { runGit } from '../test/support/gitServer.ts';
import { installSignalHandlers, onCleanup, runAllCleanups } from './lib/cleanup.ts';
import { BENCH_DEPLOYMENT, generateTestnetDeployment } from './lib/generate.ts';
import { median, msSince, round1 } from './lib/stats.ts';
import { systemInfo } from './lib/system.ts';

const USAGE = `npm run bench:footprint -- [options]
  --machines N     test hosts, one service each (default 100)
  --idle S         seconds of idle sampling after the deployment (default 60)
  --probe S        the deployment's probeInterval in seconds (default 15)
  --subnet S       loopback /24 of the test hosts (default 127.0.64)
  --out FILE       where the JSON goes (default bench/results/footprint.json)`;

const log = (msg: string) => process.stderr.write(`footprint: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VmRSS, VmHWM (peak RSS) in MiB, and CPU time in ms, of a process, from /proc. */
function procFigures(pid: number): { rssMb: number; hwmMb: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const ticks = procStat(pid)?.cpuTicks ?? NaN;
  return { rssMb: round1(kb('VmRSS') / 1024), hwmMb: round1(kb('VmHWM') / 1024), cpuMs: (ticks * 1000) / 100 };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function deploymentStatus(api: string): Promise<{ generation?: number; lastFailure?: { message: string }; drift?: { checkedAt: string; unreachable: string[]; items: unknown[] } } | undefined> {
  try {
    const res = await fetch(`${api}/api/deployments/${BENCH_DEPLOYMENT}`);
    return res.ok ? ((await res.json()) as never) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: { machines: { type: 'string' }, idle: { type: 'string' }, probe: { type: 'string' }, subnet: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const machines = Number(v.machines ?? 100);
  const idleS = Number(v.idle ?? 60);
  const probeS = Number(v.probe ?? 15);
  for (const [name, n] of Object.entries({ machines, idle: idleS, probe: probeS })) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive whole number, not ${String(n)}`);
  }
  const subnet = v.subnet ?? '127.0.64';
  const out = v.out ?? 'bench/results/footprint.json';
  installSignalHandlers();
  const system = systemInfo();
  const work = mkdtempSync(path.join(os.tmpdir(), 'strata-footprint-'));
  onCleanup(`rm ${work}`, () => rmSync(work, { recursive: true, force: true }));
  let controller: ChildProcess | undefined;
  try {
    const repo = path.join(work, 'repo');
    const dep = generateTestnetDeployment({ dir: repo, hosts: machines, servicesPerHost: 1, artifactKb: 4, basePort: 44000, chain: false, service: 'perl' });
    log(`starting ${machines} sshd test hosts on ${subnet}.*`);
    onCleanup(`testnet ${dep.testnetDir}`, async () => {
      await testnetDown(dep.testnetDir);
    });
    await testnetUp({ dir: dep.testnetDir, machines: dep.machines, subnet });
    // The models go to Git; the hosts' private key and state stay out of it.
    writeFileSync(path.join(repo, '.gitignore'), 'testnet/*\n!testnet/network.physical.yaml\n');
    runGit(repo, ['init', '-q', '-b', 'main']);
    runGit(repo, ['add', '-A']);
    runGit(repo, ['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-q', '-m', 'bench deployment']);

    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const config = path.join(work, 'controller.yaml');
    writeFileSync(
      config,
      YAML.stringify({
        stateDir: path.join(work, 'state'),
        listen: `127.0.0.1:${port}`,
        logLevel: 'warn',
        deployments: [{ name: BENCH_DEPLOYMENT, repository: { url: repo, branch: 'main' }, path: 'strata.yaml', probeInterval: `${probeS}s`, interval: '10m', ssh: { allowedFiles: [dep.testnetDir] } }],
      }),
    );
    log(`starting the controller (${api})`);
    const t0 = performance.now();
    const child = spawn(process.execPath, ['bin/strata.js', 'controller', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    controller = child;
    const stderr: string[] = [];
    child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    onCleanup('controller', async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    });

    let deployedMs: number | undefined;
    while (deployedMs === undefined) {
      if (child.exitCode !== null) throw new Error(`the controller exited (${child.exitCode}):\n${stderr.join('').slice(-2000)}`);
      const s = await deploymentStatus(api);
      if (s?.lastFailure) throw new Error(`the deployment failed: ${s.lastFailure.message}`);
      if (s?.generation === 1) deployedMs = msSince(t0);
      else if (msSince(t0) > 300_000) throw new Error('not deployed after 5 minutes');
      else await sleep(200);
    }
    const afterDeploy = procFigures(child.pid!);
    log(`deployed ${machines} machines in ${round1(deployedMs / 1000)} s; RSS ${afterDeploy.rssMb} MiB; sampling for ${idleS} s`);

    const samples: number[] = [];
    const probesSeen = new Set<string>();
    let unreachable = 0;
    let driftItems = 0;
    const idleStart = procFigures(child.pid!);
    for (let i = 0; i < idleS; i++) {
      await sleep(1000);
      if (child.exitCode !== null) throw new Error(`the controller exited while idle (${child.exitCode})`);
      samples.push(procFigures(child.pid!).rssMb);
      const s = await deploymentStatus(api);
      if (s?.drift && !probesSeen.has(s.drift.checkedAt)) {
        probesSeen.add(s.drift.checkedAt);
        unreachable = Math.max(unreachable, s.drift.unreachable.length);
        driftItems = Math.max(driftItems, s.drift.items.length);
      }
    }
    const idleEnd = procFigures(child.pid!);
    const cpuPercent = round1((100 * (idleEnd.cpuMs - idleStart.cpuMs)) / (idleS * 1000));
    const result = {
      format: 'strata-bench-footprint/1',
      system,
      machines,
      probeIntervalS: probeS,
      idleS,
      deployedMs,
      rssAfterDeployMb: afterDeploy.rssMb,
      idleRssMb: { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), last: samples.at(-1) },
      peakRssMb: idleEnd.hwmMb,
      idleCpuPercent: cpuPercent,
      probesSeen: probesSeen.size,
      probeUnreachableMax: unreachable,
      probeDriftItemsMax: driftItems,
    };
    process.stdout.write(
      [
        '',
        `idle strata controller watching ${machines} machines (probeInterval ${probeS}s), ${system.nproc} CPUs, node ${system.node}`,
        `| figure | value |`,
        `|---|---:|`,
        `| first deployment of all ${machines} machines (controller start to generation 1) | ${round1(deployedMs / 1000)} s |`,
        `| RSS right after that deployment | ${afterDeploy.rssMb} MiB |`,
        `| RSS while idle, median (min – max) over ${idleS} s | ${result.idleRssMb.median} MiB (${result.idleRssMb.min} – ${result.idleRssMb.max}) |`,
        `| peak RSS of the process (VmHWM) | ${idleEnd.hwmMb} MiB |`,
        `| CPU while idle (drift probes included) | ${cpuPercent} % of one core |`,
        `| drift probes seen while idle | ${probesSeen.size} (unreachable machines at most ${unreachable}, drifted items at most ${driftItems}) |`,
        '',
      ].join('\n'),
    );
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${out}`);
    return probesSeen.size > 0 && unreachable === 0 && driftItems === 0 ? 0 : 1;
  } finally {
    if (controller && controller.exitCode === null) {
      controller.kill('SIGTERM');
      await new Promise((r) => controller!.once('exit', r));
    }
    await runAllCleanups();
  }
}

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    process.stderr.write(`footprint: failed: ${(e as Error).stack ?? String(e)}\n`);
    await runAllCleanups();
    process.exit(1);
  },
);
