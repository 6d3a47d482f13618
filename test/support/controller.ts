import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { dirname, join } from 'node:path';
import { applyDeployment } from '../../src/api/apply.ts';
import { stateStore } from '../../src/api/context.ts';
import { planDestroy } from '../../src/api/destroy.ts';
import type { DeploymentStatus } from '../../src/controller/status.ts';
import { contextFor } from '../../src/api/services.ts';

/**
 * Helpers for the controller's end-to-end tests: polling, a small client for the HTTP API,
 * Prometheus text parsing, the hello-world models as a deployment repository, and cleanup of
 * services a `target: local` deployment started on this host.
 */

const EXAMPLE = new URL('../../examples/hello-world/', import.meta.url).pathname;

/**
 * Polls `probe` until it returns something truthy (returned), at most `timeoutMs`. A probe that
 * throws counts as "not yet"; on timeout the error names `what` and the last value or error.
 */
export async function until<T>(probe: () => T | Promise<T>, timeoutMs: number, what: string, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${shown?.slice(0, 2000)})`);
    }
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface HttpAnswer {
  status: number;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: any;
}

/** A client for the controller's HTTP API (docs/controller.md). */
export class ControllerApi {
  constructor(
    readonly base: string,
    private readonly token?: string,
  ) {}

  async request(method: string, path: string, opts: { token?: string | null; body?: string; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
    const token = opts.token === undefined ? this.token : opts.token;
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (token !== null && token !== undefined) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${this.base}${path}`, { method, headers, body: opts.body, signal: AbortSignal.timeout(60_000) });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  }

  async status(name: string): Promise<DeploymentStatus> {
    const r = await this.request('GET', `/api/deployments/${name}`);
    if (r.status !== 200) throw new Error(`GET /api/deployments/${name}: ${r.status} ${r.text}`);
    return r.json as DeploymentStatus;
  }

  async history(name: string): Promise<HistoryAnswer> {
    const r = await this.request('GET', `/api/deployments/${name}/history`);
    if (r.status !== 200) throw new Error(`GET /api/deployments/${name}/history: ${r.status} ${r.text}`);
    return r.json as HistoryAnswer;
  }

  post(name: string, action: string, opts: { token?: string | null; body?: string } = {}): Promise<HttpAnswer> {
    return this.request('POST', `/api/deployments/${name}/${action}`, opts);
  }

  webhook(name: string, body: string, headers: Record<string, string>): Promise<HttpAnswer> {
    return this.request('POST', `/webhooks/${name}`, { token: null, body, headers: { 'content-type': 'application/json', ...headers } });
  }

  async metrics(): Promise<string> {
    const r = await this.request('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
    return r.text;
  }
}

export interface HistoryAnswer {
  deployment: string;
  generations: {
    generation: number;
    createdAt: string;
    current: boolean;
    commit?: { sha: string; author: { name: string; email: string }; message: string; time: string };
    source?: string;
    rolledBackTo?: number;
    machines: number;
    services: number;
  }[];
}

export function condition(s: DeploymentStatus, type: 'Ready' | 'Reconciling' | 'Stalled') {
  return s.conditions.find((c) => c.type === type);
}

/** HMAC-SHA256 of body with secret, hex (GitHub, Gitea and X-Strata-Signature sign this way). */
export function hmacHex(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export interface MetricSeries {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of the Prometheus text format, or only those named `name`. */
export function metricSeries(text: string, name?: string): MetricSeries[] {
  const out: MetricSeries[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || (name !== undefined && m[1] !== name)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `labels`; 0 when there is none. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const matching = metricSeries(text, name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]?.value ?? 0;
}

/**
 * Copies the hello-world example's models into a repository working tree: the named root file
 * becomes `strata.yaml`, plus network.yaml, services.yaml, distribution.yaml and services/.
 */
export function copyHelloWorldModels(dest: string, rootFile = 'strata.testnet.yaml'): void {
  const copy = (from: string, to: string) => {
    mkdirSync(dirname(join(dest, to)), { recursive: true });
    copyFileSync(join(EXAMPLE, from), join(dest, to));
  };
  copy(rootFile, 'strata.yaml');
  for (const f of ['network.yaml', 'services.yaml', 'distribution.yaml']) copy(f, f);
  for (const service of readdirSync(join(EXAMPLE, 'services'))) {
    for (const f of readdirSync(join(EXAMPLE, 'services', service))) copy(`services/${service}/${f}`, `services/${service}/${f}`);
  }
}

/** Replaces `from` in a file, failing loudly when nothing changed. */
export function editFile(path: string, from: string | RegExp, to: string): string {
  const text = readFileSync(path, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`editing ${path} changed nothing (${String(from)} not found)`);
  return next;
}

/**
 * Stops everything a deployment on `target: local` machines runs on this host: destroys its
 * current generation through the recorded state (each process is stopped by its recorded PID,
 * with its process group). Does nothing when nothing is deployed.
 */
export async function destroyLocalDeployment(stateDir: string, deployment: string): Promise<void> {
  if (!stateStore(contextFor({ stateDir })).current(deployment)) return;
  await applyDeployment(planDestroy(deployment, contextFor({ stateDir })), contextFor({ stateDir }));
}

/** Each line of a JSON-lines log, parsed (lines that are not JSON are skipped). */
export function jsonLines(text: string): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as Record<string, any>);
    } catch {
      // not a JSON line
    }
  }
  return out;
}
