import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TestnetError } from '../errors.ts';
import { writeFileAtomic } from '../lib/atomicFile.ts';
import { STATE_FILE } from './layout.ts';
import type { Testnet, TestnetHost } from './types.ts';

const hostStateSchema = z.object({
  name: z.string(),
  address: z.string(),
  port: z.number().int(),
  hostKey: z.string(),
  /** 0 until the sshd is spawned. */
  pid: z.number().int(),
  /** Start time of `pid` (field 22 of /proc/PID/stat): with pid, identifies the process even after pid reuse. */
  pidStartTime: z.string(),
  dir: z.string(),
  /** Empty until the sshd is up in its namespace. */
  mountNs: z.string(),
  /** The host's shell and tools (hostShell.ts); absent in a state written before variants existed. */
  shell: z.enum(['default', 'dash', 'busybox']).optional(),
});

const stateSchema = z.object({
  version: z.literal(1),
  /** `creating`: files being made; `starting`: sshds spawned; `up`: every host accepts SSH. */
  status: z.enum(['creating', 'starting', 'up']),
  /** Whether `testnetUp` created DIR itself (then `testnetDown` removes it when it is left empty). */
  createdDir: z.boolean(),
  subnet: z.string(),
  dir: z.string(),
  identityFile: z.string(),
  physicalNetworkFile: z.string(),
  hosts: z.array(hostStateSchema),
});

export type TestnetHostState = z.infer<typeof hostStateSchema>;
export type TestnetState = z.infer<typeof stateSchema>;

export function statePath(dir: string): string {
  return path.join(dir, STATE_FILE);
}

/** The recorded state of DIR, or undefined when DIR holds none. Throws when the file is unreadable. */
export function readState(dir: string): TestnetState | undefined {
  const file = statePath(dir);
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TestnetError('TESTNET_STATE_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { file }, { cause: err });
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new TestnetError('TESTNET_STATE_INVALID', `${file} is not a strata testnet state file: ${parsed.error.message}`, { file });
  }
  return parsed.data;
}

/** Writes the state atomically, so a crash never leaves half a file. */
export function writeState(state: TestnetState): void {
  writeFileAtomic(statePath(state.dir), `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

export function toTestnetHost(h: TestnetHostState): TestnetHost {
  return { name: h.name, address: h.address, port: h.port, hostKey: h.hostKey, pid: h.pid, dir: h.dir, mountNs: h.mountNs };
}

export function toTestnet(state: TestnetState): Testnet {
  return {
    dir: state.dir,
    hosts: state.hosts.map(toTestnetHost),
    identityFile: state.identityFile,
    physicalNetworkFile: state.physicalNetworkFile,
  };
}

/** The testnet recorded in DIR/testnet.json, or undefined when DIR holds no testnet that came up. */
export function readTestnet(dir: string): Testnet | undefined {
  const state = readState(path.resolve(dir));
  return state && state.status === 'up' ? toTestnet(state) : undefined;
}
