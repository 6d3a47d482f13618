import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

/**
 * Model generation for the benchmark: a deployment for the SSH test hosts, and a large one of
 * `target: local` machines for planning at scale. Everything is written under a directory the
 * caller owns; every repository path stays inside it.
 */

/**
 * The tiny TCP server every generated service runs (CommonJS: the store has no package.json).
 * Each socket has an error handler, so a readiness probe that connects and resets (Ansible's
 * wait_for) cannot crash it.
 */
export const SERVER_JS = `// strata benchmark service: answers every TCP connection with its name.
const net = require('node:net');
const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT);
const name = process.env.STRATA_SERVICE || 'bench';
net.createServer((socket) => { socket.on('error', () => {}); socket.end(name + '\\n'); }).listen(port, host);
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * The same service in Perl (core modules only; Perl is in every Debian install): it starts in
 * ~8 ms of CPU against Node's ~60 ms, so the tools' own costs, not the service's start-up,
 * decide a comparison (bench:compare's default).
 */
export const SERVER_PL = `# strata benchmark service: answers every TCP connection with its name.
use strict;
use Socket;
socket(my $server, PF_INET, SOCK_STREAM, 0) or die "socket: $!\\n";
setsockopt($server, SOL_SOCKET, SO_REUSEADDR, 1);
bind($server, sockaddr_in($ENV{PORT}, inet_aton($ENV{HOST} || '127.0.0.1'))) or die "bind: $!\\n";
listen($server, 16) or die "listen: $!\\n";
$SIG{TERM} = sub { exit 0 };
$SIG{PIPE} = 'IGNORE';
my $name = ($ENV{STRATA_SERVICE} || 'bench') . "\\n";
while (1) { accept(my $c, $server) or next; syswrite($c, $name); close $c; }
`;

/** The program each generated service runs: `node` (server.js) or `perl` (server.pl). */
export type ServiceProgram = 'node' | 'perl';

const PROGRAMS: Record<ServiceProgram, { file: string; source: string; start: string }> = {
  node: { file: 'server.js', source: SERVER_JS, start: 'node server.js' },
  perl: { file: 'server.pl', source: SERVER_PL, start: 'perl server.pl' },
};

export const FILLER = 'filler.bin';

export interface GeneratedService {
  name: string;
  machine: string;
  port: number;
  /** The artifact directory on the controller. */
  artifactDir: string;
  fillerFile: string;
  /** The start command, run in the artifact directory. */
  start: string;
}

export interface TestnetDeployment {
  rootFile: string;
  deployment: string;
  /** The directory `testnetUp` must use: the root file names its physical network file in it. */
  testnetDir: string;
  machines: string[];
  services: GeneratedService[];
}

export const BENCH_DEPLOYMENT = 'bench';

/** `host1`, `host2`, ... */
export function hostNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `host${i + 1}`);
}

/**
 * Writes a deployment of `servicesPerHost` process services per host: each its own artifact
 * (server.js + a random filler of `artifactKb` KiB, so no two artifacts share a hash), its own
 * port, `ready: { port: main }`, and unless `chain` is false a dependsOn chain per host
 * (svc-hH-2 after svc-hH-1, ...). bench:compare turns the chain off: Ansible and the floor
 * have no dependency ordering, so strata must not be asked for more work than they are.
 * `service` picks the program every service runs (default node; bench:compare uses perl).
 * The root file merges network.yaml with testnet/network.physical.yaml, which `testnetUp`
 * writes when given `testnetDir`.
 */
export function generateTestnetDeployment(opts: {
  dir: string;
  hosts: number;
  servicesPerHost: number;
  artifactKb: number;
  basePort?: number;
  chain?: boolean;
  service?: ServiceProgram;
}): TestnetDeployment {
  const { dir } = opts;
  const program = PROGRAMS[opts.service ?? 'node'];
  const basePort = opts.basePort ?? 41000;
  const machines = hostNames(opts.hosts);
  mkdirSync(dir, { recursive: true });

  const services: GeneratedService[] = [];
  const servicesYaml: Record<string, unknown> = {};
  const distribution: Record<string, string> = {};
  machines.forEach((machine, h) => {
    for (let k = 1; k <= opts.servicesPerHost; k++) {
      const name = `svc-h${h + 1}-${k}`;
      const port = basePort + h * opts.servicesPerHost + (k - 1);
      const rel = `services/${name}`;
      const artifactDir = path.join(dir, rel);
      mkdirSync(artifactDir, { recursive: true });
      writeFileSync(path.join(artifactDir, program.file), program.source);
      const fillerFile = path.join(artifactDir, FILLER);
      writeFiller(fillerFile, opts.artifactKb);
      servicesYaml[name] = {
        type: 'process',
        artifact: rel,
        start: program.start,
        ports: { main: port },
        ready: { port: 'main', timeout: 20 },
        ...(k > 1 && opts.chain !== false ? { dependsOn: [`svc-h${h + 1}-${k - 1}`] } : {}),
      };
      distribution[name] = machine;
      services.push({ name, machine, port, artifactDir, fillerFile, start: program.start });
    }
  });

  const network = Object.fromEntries(machines.map((m) => [m, { system: 'x86_64-linux', properties: { zone: 'bench' } }]));
  writeYaml(path.join(dir, 'network.yaml'), { machines: network }, '# Logical network; addresses and SSH settings come from testnet/network.physical.yaml.');
  writeYaml(path.join(dir, 'services.yaml'), { services: servicesYaml });
  writeYaml(path.join(dir, 'distribution.yaml'), { distribution });
  const rootFile = path.join(dir, 'strata.yaml');
  writeYaml(rootFile, {
    name: BENCH_DEPLOYMENT,
    network: ['network.yaml', 'testnet/network.physical.yaml'],
    services: 'services.yaml',
    distribution: 'distribution.yaml',
  });
  return { rootFile, deployment: BENCH_DEPLOYMENT, testnetDir: path.join(dir, 'testnet'), machines, services };
}

/** Random bytes: incompressible, and a new hash every time it is written. */
export function writeFiller(file: string, kb: number): void {
  writeFileSync(file, randomBytes(kb * 1024));
}

export interface ScaleModel {
  rootFile: string;
  deployment: string;
  machines: number;
  services: number;
  instances: number;
  artifacts: number;
  /** Bytes of YAML written (all model files). */
  yamlBytes: number;
}

export const SCALE_DEPLOYMENT = 'bench-scale';

/**
 * A model for planning at scale: `machines` local machines (loopback addresses, no hosts
 * needed: planning contacts no machine), `instances / replicas` services of `replicas`
 * instances each, spread so every machine gets the same number; dependsOn chains of 10
 * services; `artifacts` artifact directories shared round-robin (server.js + 4 KiB filler).
 * The network is split into a logical and a physical file, as real deployments do.
 */
export function generateScaleModel(opts: { dir: string; machines: number; instances: number; replicas: number; artifacts: number }): ScaleModel {
  const { dir, machines, replicas } = opts;
  const serviceCount = opts.instances / replicas;
  if (!Number.isInteger(serviceCount)) throw new Error('instances must be a multiple of replicas');
  if (serviceCount > 55_000) throw new Error('at most 55000 services (one port each)');
  mkdirSync(dir, { recursive: true });

  for (let a = 0; a < opts.artifacts; a++) {
    const adir = path.join(dir, 'artifacts', `a${a}`);
    mkdirSync(adir, { recursive: true });
    writeFileSync(path.join(adir, 'server.js'), SERVER_JS);
    writeFiller(path.join(adir, FILLER), 4);
  }

  const machineName = (j: number) => `m${String(j).padStart(5, '0')}`;
  const logical: Record<string, unknown> = {};
  const physical: Record<string, unknown> = {};
  for (let j = 0; j < machines; j++) {
    logical[machineName(j)] = { system: 'x86_64-linux', properties: { zone: `z${j % 4}`, memory: 4096 } };
    physical[machineName(j)] = { target: 'local', address: loopbackAddress(j) };
  }

  const serviceName = (i: number) => `svc${String(i).padStart(5, '0')}`;
  const services: Record<string, unknown> = {};
  const distribution: Record<string, string[]> = {};
  const stride = Math.floor(machines / replicas);
  for (let i = 0; i < serviceCount; i++) {
    services[serviceName(i)] = {
      type: 'process',
      artifact: `artifacts/a${i % opts.artifacts}`,
      start: 'node server.js',
      env: { ROLE: `r${i % 10}` },
      ports: { main: 10_000 + i },
      ready: { port: 'main' },
      ...(i % 10 !== 0 ? { dependsOn: [serviceName(i - 1)] } : {}),
    };
    distribution[serviceName(i)] = Array.from({ length: replicas }, (_, k) => machineName((i + k * stride) % machines));
  }

  let yamlBytes = 0;
  yamlBytes += writeYaml(path.join(dir, 'network.yaml'), { machines: logical });
  yamlBytes += writeYaml(path.join(dir, 'network.physical.yaml'), { machines: physical });
  yamlBytes += writeYaml(path.join(dir, 'services.yaml'), { services });
  yamlBytes += writeYaml(path.join(dir, 'distribution.yaml'), { distribution });
  const rootFile = path.join(dir, 'strata.yaml');
  yamlBytes += writeYaml(rootFile, {
    name: SCALE_DEPLOYMENT,
    network: ['network.yaml', 'network.physical.yaml'],
    services: 'services.yaml',
    distribution: 'distribution.yaml',
  });
  return { rootFile, deployment: SCALE_DEPLOYMENT, machines, services: serviceCount, instances: opts.instances, artifacts: opts.artifacts, yamlBytes };
}

/** Distinct loopback addresses 127.100.0.1 onwards (250 per /24, so no .0 or .255). */
export function loopbackAddress(j: number): string {
  const perC = 250;
  const c = j % perC;
  const b = Math.floor(j / perC) % perC;
  const a = 100 + Math.floor(j / (perC * perC));
  return `127.${a}.${b + 1}.${c + 1}`;
}

function writeYaml(file: string, value: unknown, header?: string): number {
  const text = (header ? `${header}\n` : '') + YAML.stringify(value, { lineWidth: 0 });
  writeFileSync(file, text);
  return Buffer.byteLength(text);
}
