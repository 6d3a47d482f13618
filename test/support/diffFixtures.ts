import { resolveManifest } from '../../src/manifest/resolve.ts';
import type { ArtifactSource, Manifest } from '../../src/manifest/types.ts';
import { loadModels } from '../../src/model/load.ts';
import type { RecordedState } from '../../src/manifest/recorded.ts';
import type { Plan, Step } from '../../src/plan/types.ts';

// Models and helpers shared by the planTransition tests (diff.test.ts, diffStateful.test.ts).
const ROOT = ['name: hello', 'network: network.yaml', 'services: services.yaml', 'distribution: distribution.yaml', ''].join('\n');

export const NETWORK = [
  'machines:',
  '  m1: { address: 10.0.0.1, allowedPaths: [/etc/hello] }',
  '  m2: { address: 10.0.0.2 }',
  '  m3: { address: 10.0.0.3 }',
  '',
].join('\n');

export const MOTD = ['    files:', '      - { path: /etc/hello/motd, content: "welcome" }', ''].join('\n');

const SERVICES = [
  'services:',
  '  hello-world-server:',
  '    type: process',
  '    artifact: server',
  '    start: node server.js',
  '    ports: { main: 5000 }',
  '  hello-world-client:',
  '    type: process',
  '    artifact: client',
  '    start: node client.js',
  '    ports: { main: 5001 }',
  '    dependsOn: [hello-world-server]',
  '  extra:',
  '    type: process',
  '    artifact: extra',
  '    start: node extra.js',
  '',
].join('\n');

export const DIST = ['distribution:', '  hello-world-server: m2', '  hello-world-client: [m1, m3]', '  extra: m2', ''].join('\n');

export const hashArtifact = (s: ArtifactSource) => {
  const id = s.kind === 'inline' ? `inline:${s.content}` : s.path;
  return { hash: `hash(${id})`, size: id.length, files: 1 };
};

export function manifest(over: { network?: string; services?: string; distribution?: string; hash?: typeof hashArtifact } = {}): Manifest {
  const files: Record<string, string> = {
    '/repo/strata.yaml': ROOT,
    '/repo/network.yaml': over.network ?? NETWORK,
    '/repo/services.yaml': over.services ?? SERVICES,
    '/repo/distribution.yaml': over.distribution ?? DIST,
  };
  return resolveManifest(loadModels('/repo/strata.yaml', { readText: (p) => files[p] }), over.hash ?? hashArtifact);
}

export const recorded = (m: Manifest, generation = 1): RecordedState => ({ generation, manifest: m });

/** `action machine/name` of each step, in order. */
export const order = (p: Plan) => p.steps.map((s) => `${s.action} ${s.machine}/${s.item.name}`);

export function stepOf(p: Plan, action: Step['action'], machine: string, name: string): Step {
  const s = p.steps.find((x) => x.action === action && x.machine === machine && x.item.name === name);
  if (!s) throw new Error(`no step ${action} ${machine}/${name} in ${JSON.stringify(order(p))}`);
  return s;
}

export const indexOf = (p: Plan, s: Step) => p.steps.indexOf(s);
