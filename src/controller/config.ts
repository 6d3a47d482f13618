import { z } from 'zod';
import { identifier } from '../model/schema.ts';
import type { CredentialPolicy } from '../targets/credentials.ts';
import { readSecret } from '../git/secrets.ts';

/**
 * The controller's configuration file (`strata controller --config FILE`): where its state
 * lives, where it listens, and the deployments it keeps equal to their Git branches.
 * Secrets are never in this file: only paths of files or names of environment variables.
 */

const DURATION = /^(\d+(\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "5m", "1h", "250ms", or a number of seconds. */
export const duration = z
  .union([z.number().positive(), z.string().regex(DURATION, 'expected a duration such as "30s", "5m" or "1h"')], {
    error: 'expected a duration such as "30s", "5m" or "1h", or a number of seconds',
  })
  .transform((v) => (typeof v === 'number' ? v * 1000 : Number(DURATION.exec(v)![1]) * UNIT_MS[DURATION.exec(v)![3]!]!));

const SIZE = /^(\d+)(B|KiB|MiB|GiB)?$/;
const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** "512KiB", "1MiB", "25MiB", or a number of bytes. */
export const byteSize = z
  .union([z.number().int().positive(), z.string().regex(SIZE, 'expected a size such as "64KiB", "1MiB" or "25MiB"')], {
    error: 'expected a size such as "64KiB", "1MiB" or "25MiB", or a number of bytes',
  })
  .transform((v) => (typeof v === 'number' ? v : Number(SIZE.exec(v)![1]) * UNIT_BYTES[SIZE.exec(v)![2] ?? 'B']!))
  .refine((n) => n > 0, 'a size must be more than 0 bytes');

const ENV_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A secret's source: a file holding it, or an environment variable naming it; as a map, or as
 * one string "file:PATH" / "env:NAME" (which a Helm values override replaces whole).
 */
const secretRef = z.preprocess(
  (v) => (typeof v === 'string' && v.startsWith('file:') ? { file: v.slice(5) } : typeof v === 'string' && v.startsWith('env:') ? { env: v.slice(4) } : v),
  z
    .strictObject({
      file: z.string().min(1).nullish().describe('a file holding the secret (e.g. a mounted Kubernetes Secret)'),
      env: z.string().regex(ENV_VAR).nullish().describe('an environment variable holding the secret'),
    }, { error: 'expected { file: PATH } or { env: NAME } (or "file:PATH" / "env:NAME")' })
    .refine((s) => (s.file == null) !== (s.env == null), 'give exactly one of "file" or "env"')
    .transform((s) => (s.file != null ? { file: s.file } : { env: s.env! })),
);

export const repositoryConfig = z.strictObject({
  url: z
    .string()
    .min(1)
    .describe('https://host/org/repo.git, git@host:org/repo.git, ssh://user@host[:port]/path, or a local directory'),
  branch: z.string().min(1).optional().describe('branch to follow (default main)'),
  tag: z.string().min(1).optional(),
  commit: z.string().regex(/^[0-9a-f]{40}$/, 'expected a full 40-character commit sha').optional(),
  interval: duration.optional().describe('how often to fetch a remote (default 60s, with jitter)'),
  username: z.string().optional().describe('HTTP(S) user name (default "git" when a password is given)'),
  password: secretRef.optional().describe('HTTP(S) password or token'),
  sshKey: secretRef.optional().describe('private key for SSH remotes'),
  hostKey: z.string().optional().describe('pinned host key of an SSH remote'),
  knownHosts: z.string().optional().describe('known_hosts file for an SSH remote'),
});

/** A directory or file on the controller host, as the operator writes it: absolute, or under ~. */
const hostPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') || p === '~' || p.startsWith('~/'), 'expected an absolute path (or one starting with "~/")')
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'path must not contain control characters');

/**
 * How the deployment reaches its machines over SSH, chosen by the operator (never by the
 * repository): its own key and known_hosts, and the directories whose files its models may
 * name as ssh.identity / ssh.knownHosts (src/targets/credentials.ts).
 */
export const deploymentSsh = z.strictObject({
  identity: secretRef.optional().describe("the deployment's private key: { file: PATH } or { env: NAME }; used for machines whose model names no ssh.identity"),
  knownHosts: hostPath.optional().describe("the deployment's known_hosts file, for machines with neither ssh.hostKey nor ssh.knownHosts"),
  allowedFiles: z
    .array(hostPath)
    .max(64)
    .optional()
    .describe("directories whose files the deployment's models may name as ssh.identity or ssh.knownHosts (default none)"),
});

export const deploymentConfig = z
  .strictObject({
    name: identifier.describe('the deployment name; must equal the root file\'s name'),
    repository: repositoryConfig,
    path: z.string().min(1).default('strata.yaml').describe('the root file inside the repository'),
    interval: duration.optional().describe('reconcile at least this often, even without new commits (default 5m)'),
    selfHeal: z.boolean().default(true).describe('restore what drifted; off: only report it'),
    probeInterval: duration.optional().describe('how often to ask every machine whether it still runs what was deployed (default 60s)'),
    connectTimeout: duration.optional().describe("how long to wait for a machine's SSH connection (default 10s)"),
    commandTimeout: duration.optional().describe('how long one command (a step) may take on a machine (default 120s)'),
    lockLease: duration.optional().describe('how long a machine lock holds without renewal (default 60s; renewed every third of it)'),
    suspended: z.boolean().default(false),
    webhook: z.strictObject({ secret: secretRef }).optional(),
    ssh: deploymentSsh.optional(),
    localMachines: z
      .boolean()
      .default(false)
      .describe("allow target: local machines, which run the repository's commands on the controller host as its user (default false)"),
  })
  .refine((d) => [d.repository.branch, d.repository.tag, d.repository.commit].filter(Boolean).length <= 1, {
    message: 'give at most one of repository.branch, repository.tag, repository.commit',
    path: ['repository'],
  });

/** Bounds on every request to the controller's HTTP server (src/controller/httpApi.ts). */
export const httpConfig = z
  .strictObject({
    headersTimeout: duration.optional().describe('time to receive a request\'s headers (default 10s)'),
    requestTimeout: duration.optional().describe('time to receive a whole request, headers and body (default 30s)'),
    bodyIdleTimeout: duration.optional().describe('longest pause between two pieces of a body (default 10s)'),
    maxBodySize: byteSize.optional().describe('largest API request body (default 1MiB)'),
    maxWebhookBodySize: byteSize.optional().describe('largest webhook body (default 25MiB, GitHub\'s own cap)'),
  })
  .refine((h) => (h.headersTimeout ?? HTTP_DEFAULTS.headersTimeoutMs) <= (h.requestTimeout ?? HTTP_DEFAULTS.requestTimeoutMs), {
    message: 'headersTimeout must not be longer than requestTimeout',
    path: ['headersTimeout'],
  });

export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  maxBodyBytes: number;
  maxWebhookBodyBytes: number;
}

export const HTTP_DEFAULTS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  bodyIdleTimeoutMs: 10_000,
  maxBodyBytes: 1024 ** 2,
  maxWebhookBodyBytes: 25 * 1024 ** 2,
};

/** The HTTP bounds a configuration asks for, with the defaults for what it leaves out. */
export function httpLimits(h: z.output<typeof httpConfig> | undefined): HttpLimits {
  return {
    headersTimeoutMs: h?.headersTimeout ?? HTTP_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: h?.requestTimeout ?? HTTP_DEFAULTS.requestTimeoutMs,
    bodyIdleTimeoutMs: h?.bodyIdleTimeout ?? HTTP_DEFAULTS.bodyIdleTimeoutMs,
    maxBodyBytes: h?.maxBodySize ?? HTTP_DEFAULTS.maxBodyBytes,
    maxWebhookBodyBytes: h?.maxWebhookBodySize ?? HTTP_DEFAULTS.maxWebhookBodyBytes,
  };
}

export const controllerConfig = z.strictObject({
  stateDir: z.string().min(1).default('/var/lib/strata-controller').describe('recorded state, Git clones, local machines'),
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:8080')
    .default('127.0.0.1:8080')
    .describe('address of the HTTP API, webhooks and metrics'),
  apiToken: secretRef.optional().describe('bearer token for the mutating API endpoints'),
  http: httpConfig.optional().describe('time-outs and body size limits of the HTTP server'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  deployments: z.array(deploymentConfig).min(1),
});

export type ControllerConfig = z.output<typeof controllerConfig>;

/** A deployment's connection settings, as the apply context (src/api/context.ts) takes them, with its credential policy. */
export function connectionSettings(
  d: Pick<DeploymentConfig, 'name' | 'connectTimeout' | 'commandTimeout' | 'lockLease' | 'ssh' | 'localMachines'>,
): { connectTimeoutMs?: number; commandTimeoutMs?: number; lockLeaseMs?: number; credentials: CredentialPolicy } {
  return {
    credentials: credentialPolicy(d),
    ...(d.connectTimeout !== undefined ? { connectTimeoutMs: d.connectTimeout } : {}),
    ...(d.commandTimeout !== undefined ? { commandTimeoutMs: d.commandTimeout } : {}),
    ...(d.lockLease !== undefined ? { lockLeaseMs: d.lockLease } : {}),
  };
}
export type DeploymentConfig = z.output<typeof deploymentConfig>;

/** What the deployment may use on the controller host; its key is read only when a machine needs it, never logged. */
export function credentialPolicy(d: Pick<DeploymentConfig, 'name' | 'ssh' | 'localMachines'>): CredentialPolicy {
  const identity = d.ssh?.identity;
  return {
    deployment: d.name,
    allowedFiles: d.ssh?.allowedFiles ?? [],
    ...(identity ? { identity: () => readSecret(identity, `the SSH key of deployment ${d.name} (deployments[].ssh.identity)`) } : {}),
    ...(d.ssh?.knownHosts !== undefined ? { knownHosts: d.ssh.knownHosts } : {}),
    localMachines: d.localMachines ?? false,
  };
}
