import { parseArgs } from 'node:util';

/** The benchmark's options (`npm run bench -- --help`). */
export interface BenchOptions {
  hosts: number;
  services: number;
  artifactKb: number;
  runs: number;
  subnet: string;
  planMachines: number;
  planInstances: number;
  planReplicas: number;
  planArtifacts: number;
  planRuns: number;
  skipDeploy: boolean;
  skipPlan: boolean;
  keep: boolean;
  out: string;
}

export const USAGE = `npm run bench -- [options]

Deployment figures (real SSH test hosts, needs root):
  --hosts N           test hosts (default 5)
  --services M        services per host, a dependsOn chain on each host (default 4)
  --artifact-kb K     size of each service's filler file in KiB (default 64)
  --runs R            runs per figure, each from a fresh testnet and state dir (default 5)
  --subnet S          loopback /24 of the test hosts (default 127.0.60)
  --skip-deploy       skip the deployment figures

Plan-at-scale figures (no machines contacted):
  --plan-machines N   machines (target: local) in the generated model (default 1000)
  --plan-instances I  service instances in all (default 10000)
  --plan-replicas P   instances per service (default 10): I/P services, each on P machines
  --plan-artifacts A  distinct artifact directories shared by the services (default 8)
  --plan-runs R       runs of the plan figures (default: --runs)
  --skip-plan         skip the plan-at-scale figures

  --keep              keep the temporary directory (its path is printed)
  --out FILE          where the JSON goes (default bench/results/latest.json)
  -h, --help          this text`;

function int(v: string | undefined, name: string, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} takes an integer >= ${min}, not ${JSON.stringify(v)}`);
  return n;
}

/** Parses argv; returns undefined when --help was asked for. */
export function parseBenchArgs(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      hosts: { type: 'string' },
      services: { type: 'string' },
      'artifact-kb': { type: 'string' },
      runs: { type: 'string' },
      subnet: { type: 'string' },
      'plan-machines': { type: 'string' },
      'plan-instances': { type: 'string' },
      'plan-replicas': { type: 'string' },
      'plan-artifacts': { type: 'string' },
      'plan-runs': { type: 'string' },
      'skip-deploy': { type: 'boolean' },
      'skip-plan': { type: 'boolean' },
      keep: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const runs = int(values.runs, 'runs', 5);
  const opts: BenchOptions = {
    hosts: int(values.hosts, 'hosts', 5),
    services: int(values.services, 'services', 4),
    artifactKb: int(values['artifact-kb'], 'artifact-kb', 64, 0),
    runs,
    subnet: values.subnet ?? '127.0.60',
    planMachines: int(values['plan-machines'], 'plan-machines', 1000),
    planInstances: int(values['plan-instances'], 'plan-instances', 10_000),
    planReplicas: int(values['plan-replicas'], 'plan-replicas', 10),
    planArtifacts: int(values['plan-artifacts'], 'plan-artifacts', 8),
    planRuns: int(values['plan-runs'], 'plan-runs', runs),
    skipDeploy: values['skip-deploy'] ?? false,
    skipPlan: values['skip-plan'] ?? false,
    keep: values.keep ?? false,
    out: values.out ?? 'bench/results/latest.json',
  };
  if (opts.hosts > 254) throw new Error('--hosts: a testnet has at most 254 hosts');
  if (opts.planReplicas > opts.planMachines) throw new Error('--plan-replicas cannot exceed --plan-machines');
  if (opts.planInstances % opts.planReplicas !== 0) throw new Error('--plan-instances must be a multiple of --plan-replicas');
  if (opts.hosts * opts.services > 20_000) throw new Error('--hosts x --services: at most 20000 services (one port each)');
  return opts;
}
