/**
 * `npm run bench:compare`: the same deployment work done three ways on real sshd test hosts —
 * strata (library API), Ansible (bench/ansible/deploy.yml) and the floor (plain OpenSSH, one
 * `tar | ssh` per host) — alternating, from fresh hosts every run. Prints medians, min–max and
 * ratios; writes bench/results/compare.json and bench/results/compare-scaling.svg.
 * See docs/performance.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Context } from '../src/api/context.ts';
import { testnetDown, testnetUp } from '../src/testnet/index.ts';
import { installSignalHandlers, onCleanup, runAllCleanups } from './lib/cleanup.ts';
import { type SshEnv, ansibleEnv, ansiblePlaybook, closeMasters, floorDeploy, floorProbe, run, strataApply, strataNoChange, strataProbe, writeInventory, writeKnownHosts } from './lib/compareTools.ts';
import { greeting, sshLogins } from './lib/deploy.ts';
import { type ServiceProgram, type TestnetDeployment, generateTestnetDeployment, writeFiller } from './lib/generate.ts';
import { type Summary, median, msSince, round1, summarise } from './lib/stats.ts';
import { scalingPlot } from './lib/plot.ts';
import { listenersOn, systemInfo } from './lib/system.ts';
import { contextFor } from '../src/api/services.ts';

const log = (msg: string) => process.stderr.write(`compare: ${msg}\n`);
const TOOLS = ['strata', 'ansible', 'floor'] as const;
type Tool = (typeof TOOLS)[number];
const SCENARIOS = ['first', 'noChange', 'oneChange', 'probe'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `npm run bench:compare -- [options]
  --hosts N          hosts for the scenarios (default 5)
  --services S       services per host (default 4)
  --artifact-kb K    filler per service in KiB (default 1024)
  --service P        program every service runs: perl (server.pl, default) or node (server.js)
  --tools LIST       tools to run (default strata,ansible,floor)
  --runs R           runs per tool and scenario (default 5)
  --scale LIST       host counts for the first-deployment scaling (default 5,10,20)
  --scale-runs R     runs per tool and host count (default: --runs)
  --skip-scenarios   only the scaling
  --skip-scale       only the scenarios
  --subnet S         loopback /24 of the test hosts (default 127.0.62)
  --out DIR          where compare.json and compare-scaling.svg go (default bench/results)`;

interface Opts {
  hosts: number;
  services: number;
  artifactKb: number;
  service: ServiceProgram;
  tools: Tool[];
  runs: number;
  scale: number[];
  scaleRuns: number;
  skipScenarios: boolean;
  skipScale: boolean;
  subnet: string;
  out: string;
}

function parse(argv: string[]): Opts | undefined {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      hosts: { type: 'string' }, services: { type: 'string' }, 'artifact-kb': { type: 'string' }, runs: { type: 'string' },
      service: { type: 'string' }, tools: { type: 'string' },
      scale: { type: 'string' }, 'scale-runs': { type: 'string' }, 'skip-scenarios': { type: 'boolean' }, 'skip-scale': { type: 'boolean' },
      subnet: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) return undefined;
  const int = (s: string | undefined, d: number) => {
    const n = s === undefined ? d : Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive integer: ${s}`);
    return n;
  };
  const runs = int(v.runs, 5);
  const service = v.service ?? 'perl';
  if (service !== 'perl' && service !== 'node') throw new Error(`--service: perl or node, not ${service}`);
  const tools = (v.tools ?? TOOLS.join(',')).split(',').map((t) => t.trim());
  const unknown = tools.filter((t) => !(TOOLS as readonly string[]).includes(t));
  if (unknown.length || tools.length === 0) throw new Error(`--tools: a list of ${TOOLS.join(', ')}; not ${unknown.join(', ') || 'empty'}`);
  return {
    service,
    tools: TOOLS.filter((t) => tools.includes(t)),
    hosts: int(v.hosts, 5),
    services: int(v.services, 4),
    artifactKb: int(v['artifact-kb'], 1024),
    runs,
    scale: (v.scale ?? '5,10,20').split(',').map((s) => int(s.trim(), 0)),
    scaleRuns: int(v['scale-runs'], runs),
    skipScenarios: v['skip-scenarios'] ?? false,
    skipScale: v['skip-scale'] ?? false,
    subnet: v.subnet ?? '127.0.62',
    out: v.out ?? 'bench/results',
  };
}

type Timings = Partial<Record<Scenario, number>> & { logins: Partial<Record<Scenario, number>> };

/**
 * One run of one tool on fresh test hosts: first deployment, then (unless firstOnly) no change,
 * one service changed, drift probe. Hosts up/down and the checks are outside every timer;
 * ssh ControlMasters are closed after every operation, so each operation starts cold.
 */
async function toolRun(tool: Tool, dep: TestnetDeployment, work: string, opts: { subnet: string; firstOnly: boolean; artifactKb: number; tag: string }): Promise<Timings> {
  const down = onCleanup(`testnet ${dep.testnetDir}`, async () => {
    await testnetDown(dep.testnetDir);
  });
  const out: Timings = { logins: {} };
  const controlDir = path.join(work, 'cm');
  try {
    const testnet = await testnetUp({ dir: dep.testnetDir, machines: dep.machines, subnet: opts.subnet });
    mkdirSync(controlDir, { recursive: true });
    const knownHosts = path.join(work, 'known_hosts');
    writeKnownHosts(testnet, knownHosts);
    const env: SshEnv = { testnet, knownHosts, controlDir };
    const ctx: Context = contextFor({ stateDir: path.join(work, 'state') });
    const inventory = path.join(work, 'inventory.yml');
    if (tool === 'ansible') writeInventory(env, dep, inventory);
    const aenv = ansibleEnv(env, work, dep.machines.length);

    const timed = async (sc: Scenario, f: () => Promise<number>) => {
      const l0 = sshLogins(testnet);
      out[sc] = await f();
      out.logins[sc] = sshLogins(testnet) - l0;
      await closeMasters(controlDir);
    };
    const op = {
      strata: { deploy: async () => (await strataApply(dep, ctx)).ms, noChange: () => strataNoChange(dep, ctx), probe: () => strataProbe(dep, ctx) },
      ansible: {
        deploy: async () => (await ansiblePlaybook(inventory, aenv)).ms,
        noChange: async () => {
          const r = await ansiblePlaybook(inventory, aenv);
          if (r.changed !== 0) throw new Error(`ansible: no-change run reported changed=${r.changed}`);
          return r.ms;
        },
        probe: async () => (await ansiblePlaybook(inventory, aenv, { check: true })).ms,
      },
      floor: { deploy: () => floorDeploy(env, dep, dep.services), noChange: () => floorProbe(env), probe: () => floorProbe(env) },
    }[tool];

    await timed('first', op.deploy);
    await expectAnswering(dep, testnet.hosts, `${opts.tag} first`);
    if (!opts.firstOnly) {
      await timed('noChange', op.noChange);
      const changed = dep.services[Math.floor((dep.services.length / dep.machines.length - 1) / 2)]!;
      writeFiller(changed.fillerFile, opts.artifactKb);
      const strataOneChange = async () => {
        // Only the changed service's machine is touched, and only its artifact is sent.
        const r = await strataApply(dep, ctx);
        const sent = Object.entries(r.uploaded);
        if (r.steps !== 2 || sent.length !== 1 || sent[0]![0] !== changed.machine || sent[0]![1].length !== 1) {
          throw new Error(`strata: one service changed, but the apply ran ${r.steps} steps and uploaded ${JSON.stringify(r.uploaded)}`);
        }
        return r.ms;
      };
      await timed('oneChange', tool === 'floor' ? () => floorDeploy(env, dep, [changed]) : tool === 'strata' ? strataOneChange : op.deploy);
      await expectAnswering(dep, testnet.hosts, `${opts.tag} one change`);
      await timed('probe', op.probe);
    }
  } finally {
    await closeMasters(controlDir);
    await down.run();
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

async function expectAnswering(dep: TestnetDeployment, hosts: { name: string; address: string }[], what: string): Promise<void> {
  const addr = new Map(hosts.map((h) => [h.name, h.address]));
  const answers = await Promise.all(dep.services.map((s) => greeting(addr.get(s.machine)!, s.port)));
  const bad = dep.services.filter((s, i) => answers[i] !== s.name);
  if (bad.length) throw new Error(`${what}: ${bad.length} of ${dep.services.length} services do not answer (${dep.services.flatMap((s, i) => (answers[i] === s.name ? [] : [`${s.name}: ${JSON.stringify(answers[i])}`])).slice(0, 5).join(', ')})`);
}

/** Runs every tool of `o.tools` `runs` times, the order rotated every run (strata, ansible, floor; ansible, floor, strata; ...). */
async function series(tmp: string, hosts: number, o: Opts, runs: number, firstOnly: boolean): Promise<Record<Tool, Timings[]>> {
  const dir = path.join(tmp, `model-${hosts}`);
  const dep = generateTestnetDeployment({ dir, hosts, servicesPerHost: o.services, artifactKb: o.artifactKb, basePort: 42000, chain: false, service: o.service });
  const res: Record<Tool, Timings[]> = { strata: [], ansible: [], floor: [] };
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < o.tools.length; k++) {
      const tool = o.tools[(r + k) % o.tools.length]!;
      const tag = `N=${hosts} run ${r + 1} ${tool}`;
      const t = await toolRun(tool, dep, path.join(tmp, `work-${tool}-${hosts}-${r}`), { subnet: o.subnet, firstOnly, artifactKb: o.artifactKb, tag });
      log(`${tag}: ${SCENARIOS.filter((s) => t[s] !== undefined).map((s) => `${s} ${t[s]} ms (${t.logins[s]} logins)`).join(', ')}`);
      res[tool].push(t);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return res;
}

const fmtMs = (ms: number) => (Number.isNaN(ms) ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fmtSum = (s: Summary) => (Number.isNaN(s.median) ? '–' : `${fmtMs(s.median)} (${fmtMs(s.min)} – ${fmtMs(s.max)})`);
const ratio = (a: number, b: number) => (b > 0 && !Number.isNaN(a) ? `${(a / b).toFixed(2)}×` : '–');

/** Least-squares slope of y over x: the marginal cost per host. */
function slope(xs: number[], ys: number[]): number {
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const num = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0);
  const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return den ? num / den : NaN;
}

async function startupCosts(ansible: boolean): Promise<{ strataCli: Summary; ansiblePlaybook?: Summary }> {
  const time = async (cmd: string, args: string[]) => {
    const xs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await run(cmd, args);
      xs.push(msSince(t0));
    }
    return summarise(xs);
  };
  const strataCli = await time(process.execPath, ['bin/strata.js', '--help']);
  return ansible ? { strataCli, ansiblePlaybook: await time('ansible-playbook', ['--version']) } : { strataCli };
}

async function main(): Promise<number> {
  let o: Opts | undefined;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!o) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  installSignalHandlers();
  const system = systemInfo();
  // Without ansible in --tools, the machine need not have it installed.
  const ansible = o.tools.includes('ansible');
  const ansibleVersion = ansible ? ((await run('ansible', ['--version'])).stdout.split('\n')[0] ?? '') : 'ansible not run';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'strata-compare-'));
  onCleanup(`temp dir ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
  const t0 = performance.now();
  let scenarios: Record<Tool, Timings[]> | undefined;
  const scale: Record<number, Record<Tool, Timings[]>> = {};
  let startup: Awaited<ReturnType<typeof startupCosts>>;
  try {
    startup = await startupCosts(ansible);
    if (!o.skipScenarios) {
      log(`scenarios: ${o.hosts} hosts × ${o.services} services, ${o.artifactKb} KiB filler each, ${o.runs} runs per tool`);
      scenarios = await series(tmp, o.hosts, o, o.runs, false);
    }
    if (!o.skipScale) {
      for (const n of o.scale) {
        if (scenarios && n === o.hosts && o.scaleRuns <= o.runs) {
          scale[n] = scenarios; // the scenarios' first deployments are the same measurement
          continue;
        }
        log(`scaling: N=${n}, ${o.scaleRuns} runs per tool`);
        scale[n] = await series(tmp, n, o, o.scaleRuns, true);
      }
    }
  } finally {
    await runAllCleanups();
  }

  const lines: string[] = [];
  const p = (s = '') => lines.push(s);
  p(`\nstrata vs Ansible vs plain OpenSSH — ${system.date}, ${system.nproc} CPUs, ${system.memTotal}, node ${system.node}, ${ansibleVersion}, load ${system.loadAvg.start}→${round1(os.loadavg()[0]!)}`);
  const json: Record<string, unknown> = { format: 'strata-bench-compare/1', system, ansibleVersion, options: o, startup };
  const labels: Record<Scenario, string> = {
    first: 'first deployment',
    noChange: 'apply, no change',
    oneChange: 'one service changed',
    probe: 'drift probe, every host',
  };
  if (scenarios) {
    p(`\n${o.hosts} hosts × ${o.services} services (${o.service}), ${o.artifactKb} KiB filler each; ${o.runs} runs per tool; median (min – max); [SSH logins]`);
    p(`| scenario | strata | Ansible | floor | strata/Ansible | strata/floor |`);
    p(`|---|---:|---:|---:|---:|---:|`);
    const summary: Record<string, Record<Tool, Summary>> = {};
    for (const sc of SCENARIOS) {
      const s = Object.fromEntries(TOOLS.map((t) => [t, summarise(scenarios![t].map((r) => r[sc]!))])) as Record<Tool, Summary>;
      const lg = (t: Tool) => (scenarios![t].length ? ` [${median(scenarios![t].map((r) => r.logins[sc]!))}]` : '');
      summary[sc] = s;
      p(`| ${labels[sc]} | ${fmtSum(s.strata)}${lg('strata')} | ${fmtSum(s.ansible)}${lg('ansible')} | ${fmtSum(s.floor)}${lg('floor')} | ${ratio(s.strata.median, s.ansible.median)} | ${ratio(s.strata.median, s.floor.median)} |`);
    }
    json.scenarios = { summary, runs: scenarios };
  }
  if (Object.keys(scale).length) {
    const ns = Object.keys(scale).map(Number).sort((a, b) => a - b);
    p(`\nfirst deployment vs hosts (${o.services} ${o.service} services per host); median (min – max)`);
    p(`| hosts | strata | Ansible | floor | strata/Ansible | strata/floor |`);
    p(`|---:|---:|---:|---:|---:|---:|`);
    const pts = Object.fromEntries(TOOLS.map((t) => [t, [] as { n: number; median: number; min: number; max: number }[]])) as Record<Tool, { n: number; median: number; min: number; max: number }[]>;
    for (const n of ns) {
      const s = Object.fromEntries(TOOLS.map((t) => [t, summarise(scale[n]![t].map((r) => r.first!))])) as Record<Tool, Summary>;
      for (const t of TOOLS) pts[t].push({ n, median: s[t].median, min: s[t].min, max: s[t].max });
      p(`| ${n} | ${fmtSum(s.strata)} | ${fmtSum(s.ansible)} | ${fmtSum(s.floor)} | ${ratio(s.strata.median, s.ansible.median)} | ${ratio(s.strata.median, s.floor.median)} |`);
    }
    const marginal = Object.fromEntries(TOOLS.map((t) => [t, round1(slope(ns, pts[t].map((q) => q.median)))])) as Record<Tool, number>;
    if (ns.length > 1) p(`| marginal per host (least squares over the medians) | ${fmtMs(marginal.strata)} | ${fmtMs(marginal.ansible)} | ${fmtMs(marginal.floor)} | ${ratio(marginal.strata, marginal.ansible)} | ${ratio(marginal.strata, marginal.floor)} |`);
    json.scale = { points: pts, marginalMsPerHost: marginal, runs: Object.fromEntries(ns.map((n) => [n, Object.fromEntries(TOOLS.map((t) => [t, scale[n]![t].map((r) => r.first)]))])) };
    mkdirSync(o.out, { recursive: true });
    writeFileSync(path.join(o.out, 'compare-scaling.svg'), scalingPlot(pts, `first deployment, ${o.services} ${o.service} services per host`));
  }
  p(`\nprocess start-up, not in the figures above: \`node bin/strata.js --help\` ${fmtSum(startup.strataCli)}; \`ansible-playbook --version\` ${startup.ansiblePlaybook ? fmtSum(startup.ansiblePlaybook) : 'not run'}`);
  const leaks = listenersOn(o.subnet);
  json.leaks = leaks;
  json.totalMs = msSince(t0);
  p(`total ${fmtMs(msSince(t0))}; listeners left on ${o.subnet}.*: ${leaks.length ? leaks.join(', ') : 'none'}\n`);
  process.stdout.write(lines.join('\n'));
  mkdirSync(o.out, { recursive: true });
  writeFileSync(path.join(o.out, 'compare.json'), `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${path.join(o.out, 'compare.json')}`);
  return leaks.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    process.stderr.write(`compare: failed: ${(e as Error).stack ?? String(e)}\n`);
    await runAllCleanups();
    process.exit(1);
  },
);
