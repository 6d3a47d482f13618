/**
 * Child process of the plan-at-scale figures: one measurement per process, so peak memory
 * (maxRSS) belongs to that measurement alone. Prints one line of JSON on stdout.
 *
 *   node --import tsx bench/planChild.ts phases ROOT STATE_DIR
 *   node --import tsx bench/planChild.ts plan ROOT STATE_DIR
 *   node --import tsx bench/planChild.ts record ROOT STATE_DIR
 *
 * `plan` calls planDeployment as the CLI does. `phases` runs the same work step by step
 * (load + validate, resolve the manifest with artifact hashing timed apart, read the recorded
 * state, diff) and then renders the plan as markdown (a PR comment) and JSON (`--out`).
 * `record` writes the desired manifest as generation 1 into STATE_DIR (no machine involved),
 * so `plan` can be measured against a recorded state of the same size.
 */
import { stateStore } from '../src/api/context.ts';
import { planDeployment } from '../src/api/plan.ts';
import { loadDeployment, validateDeployment } from '../src/api/load.ts';
import { hashArtifactSource } from '../src/artifact/read.ts';
import { artifactSources, resolveManifest } from '../src/manifest/resolve.ts';
import { fsTree } from '../src/tree/fsTree.ts';
import { DeploymentDir } from '../src/tree/realPath.ts';
import { isEmptyPlan, planTransition } from '../src/plan/diff.ts';
import { renderPlan } from '../src/plan/render.ts';
import type { ArtifactInfo, ArtifactSource } from '../src/manifest/types.ts';
import { contextFor } from '../src/api/services.ts';

const [mode, root, stateDir] = process.argv.slice(2);
if (!mode || !root || !stateDir || !['phases', 'plan', 'record'].includes(mode)) {
  process.stderr.write('usage: planChild.ts phases|plan|record ROOT STATE_DIR\n');
  process.exit(2);
}

const kib = () => process.resourceUsage().maxRSS; // KiB on Linux
const baselineRssKb = kib();
const ms = (t0: number) => Math.round((performance.now() - t0) * 10) / 10;
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

if (mode === 'record') {
  const { manifest } = await loadDeployment(root);
  stateStore(contextFor({ stateDir })).record(manifest.deployment, { generation: 1, createdAt: new Date().toISOString(), manifest, source: root });
  out({ mode, recorded: 1 });
} else if (mode === 'plan') {
  const t0 = performance.now();
  const plan = await planDeployment(root, contextFor({ stateDir }));
  const planMs = ms(t0);
  const heapUsed = process.memoryUsage().heapUsed;
  out({
    mode,
    planMs,
    steps: plan.steps.length,
    empty: isEmptyPlan(plan),
    baselineRssMb: Math.round(baselineRssKb / 102.4) / 10,
    peakRssMb: Math.round(kib() / 102.4) / 10,
    heapUsedMb: mb(heapUsed),
  });
} else {
  let t0 = performance.now();
  const models = await validateDeployment(root);
  const loadValidateMs = ms(t0);

  // Hashing (I/O) happens ahead of the pure resolution, once per distinct source, as loadDeployment does.
  t0 = performance.now();
  const sources = artifactSources(models);
  const infos = new Map<string, ArtifactInfo>();
  const dir = new DeploymentDir(fsTree, models.baseDir);
  for (const s of sources) infos.set(JSON.stringify(s), await hashArtifactSource(s, fsTree, dir));
  const hashMs = performance.now() - t0;
  const hashCalls = sources.length;
  const distinct = new Set(sources.map((s) => (s.kind === 'inline' ? s.name : s.path)));
  t0 = performance.now();
  const manifest = resolveManifest(models, (s: ArtifactSource) => infos.get(JSON.stringify(s))!);
  const resolveMs = ms(t0);

  t0 = performance.now();
  const recorded = stateStore(contextFor({ stateDir })).current(manifest.deployment);
  const readStateMs = ms(t0);

  t0 = performance.now();
  const plan = planTransition(recorded, manifest);
  const diffMs = ms(t0);

  t0 = performance.now();
  const markdown = renderPlan(plan, 'markdown');
  const renderMarkdownMs = ms(t0);
  t0 = performance.now();
  const json = renderPlan(plan, 'json');
  const renderJsonMs = ms(t0);

  out({
    mode,
    loadValidateMs,
    resolveMs,
    hashMs: Math.round(hashMs * 10) / 10,
    hashCalls,
    distinctArtifacts: distinct.size,
    readStateMs,
    diffMs,
    renderMarkdownMs,
    markdownBytes: Buffer.byteLength(markdown),
    renderJsonMs,
    jsonBytes: Buffer.byteLength(json),
    machines: Object.keys(manifest.machines).length,
    items: Object.values(manifest.machines).reduce((n, m) => n + m.items.length, 0),
    steps: plan.steps.length,
    recordedGeneration: recorded?.generation ?? null,
    peakRssMb: Math.round(kib() / 102.4) / 10,
  });
}

function out(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}
