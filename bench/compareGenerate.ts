import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BENCH_DEPLOYMENT, FILLER, hostNames, writeFiller, type GeneratedService, type TestnetDeployment } from './generate.ts';

/**
 * The service every tool starts: generate.ts's SERVER_JS, plus an error handler on each socket,
 * so a readiness probe that connects and resets (Ansible's wait_for) cannot crash it.
 */
export const SERVER_JS = `// strata bench:compare service: answers every TCP connection with its name.
const net = require('node:net');
const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT);
const name = process.env.STRATA_SERVICE || 'bench';
net.createServer((socket) => { socket.on('error', () => {}); socket.end(name + '\\n'); }).listen(port, host);
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * The model of `npm run bench:compare`: `servicesPerHost` independent process services per host
 * (no dependsOn chain: Ansible and the floor have no dependency ordering, so strata must not be
 * asked for more work than they are), each its own artifact directory `services/NAME/` with
 * `server.js` and a random filler, its own port, `ready: { port: main }`. The same directories
 * are what Ansible copies and the floor tars.
 */
export function generateCompareDeployment(opts: { dir: string; hosts: number; servicesPerHost: number; artifactKb: number; basePort?: number }): TestnetDeployment {
  const { dir } = opts;
  const basePort = opts.basePort ?? 42000;
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
      writeFileSync(path.join(artifactDir, 'server.js'), SERVER_JS);
      const fillerFile = path.join(artifactDir, FILLER);
      writeFiller(fillerFile, opts.artifactKb);
      servicesYaml[name] = { type: 'process', artifact: rel, start: 'node server.js', ports: { main: port }, ready: { port: 'main', timeout: 20 } };
      distribution[name] = machine;
      services.push({ name, machine, port, artifactDir, fillerFile });
    }
  });
  const network = Object.fromEntries(machines.map((m) => [m, { system: 'x86_64-linux', properties: { zone: 'bench' } }]));
  const write = (file: string, value: unknown) => writeFileSync(path.join(dir, file), YAML.stringify(value, { lineWidth: 0 }));
  write('network.yaml', { machines: network });
  write('services.yaml', { services: servicesYaml });
  write('distribution.yaml', { distribution });
  write('strata.yaml', { name: BENCH_DEPLOYMENT, network: ['network.yaml', 'testnet/network.physical.yaml'], services: 'services.yaml', distribution: 'distribution.yaml' });
  return { rootFile: path.join(dir, 'strata.yaml'), deployment: BENCH_DEPLOYMENT, testnetDir: path.join(dir, 'testnet'), machines, services };
}
