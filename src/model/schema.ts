import { z } from 'zod';

/**
 * The model schemas. Every name that ends up in a path, a process environment or a shell on a
 * machine is restricted here, so nothing unsafe gets past validation.
 */

export const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$/;
const MAX_TEXT = 64 * 1024;
/** The runtime root of an ssh machine whose model names none. */
export const DEFAULT_ROOT = '/var/lib/strata';

export const identifier = z
  .string()
  .regex(IDENTIFIER, 'expected a safe name: a letter, then letters, digits, "-" or "_" (at most 63 characters)');

export const envName = z
  .string()
  .regex(ENV_NAME, 'expected an environment variable name (letters, digits, "_")')
  // A record drops this key silently (assigning it sets an object's prototype): refuse it instead.
  .refine((k) => k !== '__proto__', 'is reserved in JavaScript and cannot be a name here');

/** A path on a machine: absolute, normalised, no "..", no control characters. */
export const absolutePath = z
  .string()
  .max(4096)
  .refine((p) => p.startsWith('/'), 'expected an absolute path (starting with "/")')
  .refine((p) => !p.split('/').some((seg) => seg === '..' || seg === '.'), 'path must not contain "." or ".." segments')
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'path must not contain control characters or newlines')
  .refine((p) => p === '/' || !p.endsWith('/'), 'path must not end with "/"');

/** A path inside the repository, relative to the model file that names it. */
export const repoPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.startsWith('/'), 'expected a path relative to this file, inside the repository')
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'path must not contain control characters or newlines');

const text = z.string().max(MAX_TEXT, `at most ${MAX_TEXT} characters`);
const port = z.number().int().min(1).max(65535);
const envValue = z.union([z.string().max(MAX_TEXT), z.number(), z.boolean()], { error: 'expected a string, number or boolean' });
const env = z.record(envName, envValue);
const fileMode = z.string().regex(/^0?[0-7]{3}$/, 'expected an octal mode such as "0644"');
const seconds = z.number().positive().max(3600);

const ready = z
  .strictObject({
    port: identifier.optional().describe('name of one of the ports; ready when something listens on it'),
    command: text.optional().describe('a command that exits 0 once the service is ready'),
    timeout: seconds.optional().describe('seconds to wait for readiness (default 30)'),
  })
  .describe('readiness check after start');

const properties = z.record(identifier, z.union([z.string().max(1024), z.number(), z.boolean()]));

// ---------------------------------------------------------------------------- network

export const machineFile = z.strictObject({
  path: absolutePath,
  content: text.optional(),
  source: repoPath.optional().describe('a file in the repository, relative to this network file'),
  mode: fileMode.optional(),
});

export const machineDirectory = z.strictObject({ path: absolutePath, mode: fileMode.optional() });

export const daemon = z.strictObject({
  start: text,
  artifact: repoPath.optional(),
  env: env.optional(),
  ports: z.record(identifier, port).optional(),
  ready: ready.optional(),
});

export const container = z.strictObject({
  daemon: identifier.optional().describe('the machine daemon that provides this container'),
  properties: properties.optional(),
});

export const sshSettings = z.strictObject({
  port: port.optional(),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a POSIX user name').optional(),
  hostKey: z
    .string()
    .regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/, 'expected a public host key line such as "ssh-ed25519 AAAA..."')
    .optional(),
  knownHosts: z.string().max(4096).optional().describe('a known_hosts file on the controller'),
  identity: z.string().max(4096).optional().describe('private key file on the controller (or use STRATA_SSH_KEY)'),
  trustOnFirstUse: z
    .boolean()
    .optional()
    .describe('with no hostKey and no known entry: accept the key seen first and pin it in the state directory (off by default)'),
});

export const machine = z.strictObject({
  target: z.enum(['ssh', 'local']).optional().describe('how strata reaches the machine (default ssh)'),
  address: z.string().regex(HOSTNAME, 'expected a host name or IP address').optional(),
  system: identifier.optional(),
  properties: properties.optional(),
  containers: z.record(identifier, container).optional(),
  ssh: sshSettings.optional(),
  root: absolutePath.optional().describe(`the runtime root on the machine (default ${DEFAULT_ROOT})`),
  allowedPaths: z.array(absolutePath).optional().describe('where file services and machine files may write'),
  files: z.array(machineFile).optional(),
  directories: z.array(machineDirectory).optional(),
  daemons: z.record(identifier, daemon).optional(),
});

export const networkFile = z.strictObject({
  machines: z.record(identifier, machine),
});

// ---------------------------------------------------------------------------- services

export const serviceType = z.enum(['process', 'file', 'script', 'postgresql-database']);

export const service = z.strictObject({
  type: serviceType,
  description: text.optional(),
  artifact: repoPath.optional().describe('directory shipped to the machine, relative to this file'),
  start: text.optional().describe('process: the command that runs the service (in the artifact directory)'),
  env: env.optional(),
  ports: z.record(identifier, port).optional(),
  ready: ready.optional(),
  path: absolutePath.optional().describe('file: the directory the artifact is placed in'),
  dependsOn: z.array(identifier).optional(),
  connectsTo: z.array(identifier).optional(),
  stateful: z.boolean().optional().describe('its data moves with it: snapshot before it leaves a machine, restore where it arrives (default true for postgresql-database)'),
});

export const servicesFile = z.strictObject({
  services: z.record(identifier, service),
});

// ---------------------------------------------------------------------------- distribution

export const placement = z.union([identifier, z.strictObject({ machine: identifier, container: identifier.optional() })], {
  error: 'expected a machine name, or { machine: NAME, container: NAME }',
});

export const distributionFile = z.strictObject({
  distribution: z.record(identifier, z.union([placement, z.array(placement)], { error: 'expected a machine name, { machine, container }, or a list of them' })),
});

// ---------------------------------------------------------------------------- root

const oneOrMany = z.union([repoPath, z.array(repoPath).min(1)], { error: 'expected a file path relative to this file, or a list of them' });

export const rootFile = z.strictObject({
  name: identifier,
  description: text.optional(),
  network: oneOrMany,
  services: oneOrMany,
  distribution: oneOrMany,
  snapshotsKept: z.number().int().min(1).max(1000).optional().describe('snapshots of stateful services kept per service in the state directory (default 5)'),
});

export type MachineInput = z.infer<typeof machine>;
export type ServiceInput = z.infer<typeof service>;
export type PlacementInput = z.infer<typeof placement>;
export type RootInput = z.infer<typeof rootFile>;
export type ModelKind = 'root' | 'network' | 'services' | 'distribution';

export const schemas = {
  root: rootFile,
  network: networkFile,
  services: servicesFile,
  distribution: distributionFile,
} as const;
