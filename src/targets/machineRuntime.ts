import { TargetError } from '../errors.ts';
import type { ArtifactEntry } from '../artifact/hash.ts';
import type { Item, MachineManifest } from '../manifest/types.ts';
import { itemSpecFiles } from './itemSpec.ts';
import { RUNTIME_SCRIPT, runtimePath } from './runtime/script.ts';
import { encodeFiles, encodeUpload } from './stream.ts';
import type { RunResult, Target } from './target.ts';

/** Exit code of the command wrapper when the runtime is not on the machine yet. */
const NOT_INSTALLED = 113;
const LOCKED = 75;

/** A machine's own record of a generation: its part of the manifest. */
export interface MachineRecord {
  deployment: string;
  generation: number;
  manifestHash: string;
  /** Null when the machine was retired from the deployment by this generation. */
  machine: MachineManifest | null;
}

export interface ItemStatus {
  key: string;
  module: string;
  state: 'running' | 'stopped' | 'present';
  pid?: number;
  /** Why the item differs from what was activated (a dead process, a changed file); absent when it does not. */
  drift?: string;
}

export interface MachineStatus {
  generation: number | null;
  lock: string | null;
  items: ItemStatus[];
}

/** Who asks for a machine lock: the controller's identity, this transition's token, its pid. */
export interface LockRequest {
  owner: string;
  token?: string;
  pid?: number;
  /** How long the lock holds without a renewal (whole seconds on the machine; at least 1 s). */
  leaseMs?: number;
  /** Break the lock if this token holds it (the caller knows that holder is dead). */
  breakToken?: string;
}

/** A machine lock as the runtime reports it; times are seconds since the epoch by the machine's clock. */
export interface LockHolder {
  owner: string;
  token: string;
  pid: number | null;
  takenAt: number;
  expiresAt: number;
  /** The machine's clock when it answered. */
  now: number;
}

export interface BrokenLock extends LockHolder {
  /** `expired`: its lease ran out; `dead-owner`: its holder was known to be dead. */
  why: 'expired' | 'dead-owner';
}

function leaseSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function parseHolder(stdout: string, tag: string): LockHolder | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`${tag} `));
  if (!line) return undefined;
  const [, owner, token, pid, taken, expires, now] = line.split(' ');
  if (!owner || !token || now === undefined) return undefined;
  return { owner, token, pid: /^\d+$/.test(pid ?? '') ? Number(pid) : null, takenAt: Number(taken), expiresAt: Number(expires), now: Number(now) };
}

/**
 * The controller's side of the target runtime: one method per runtime verb, each one
 * command on the machine. The runtime is installed (content-addressed) the first time a
 * verb finds it missing, so a machine that has it costs no extra round trip.
 */
export class MachineRuntime {
  constructor(
    readonly target: Target,
    readonly root: string,
    readonly address: string,
  ) {}

  get machine(): string {
    return this.target.machine;
  }

  /**
   * Takes the machine lock for `leaseMs` (renews it when `token` already holds it). A lock whose
   * lease expired, or held by `breakToken`, is broken and taken: `broke` says whose it was.
   * Held by anyone else: MACHINE_LOCKED, with the holder in `data.held`.
   */
  async lock(req: string | LockRequest): Promise<{ broke?: BrokenLock }> {
    const { owner, token = 't0', pid = 0, leaseMs = 60_000, breakToken } = typeof req === 'string' ? { owner: req } : req;
    const args = ['lock', owner, token, String(pid), String(leaseSeconds(leaseMs)), ...(breakToken ? [breakToken] : [])];
    // Re-taking a lock waits on the machine for commands of a dead holder still running (up to 90 s).
    const r = await this.call(args, undefined, { priority: true, timeoutMs: 100_000 });
    if (r.code === LOCKED) {
      const held = parseHolder(r.stdout, 'held');
      throw new TargetError('MACHINE_LOCKED', `${this.machine} is ${r.stderr.trim() || 'locked'}`, { machine: this.machine, ...(held ? { held } : {}) });
    }
    this.check(r, 'take the lock');
    const line = r.stdout.split('\n').find((l) => l.startsWith('broke '));
    if (!line) return {};
    const [, why, ...rest] = line.split(' ');
    const holder = parseHolder(`held ${rest.join(' ')}`, 'held');
    return holder ? { broke: { ...holder, why: why === 'expired' ? 'expired' : 'dead-owner' } } : {};
  }

  /** Extends the lease of the lock `token` holds; MACHINE_LOCKED (LOCK_LOST) when it lost it. */
  async renew(owner: string, token: string, leaseMs: number): Promise<void> {
    const r = await this.call(['renew', owner, token, String(leaseSeconds(leaseMs))], undefined, { priority: true });
    if (r.code === LOCKED) {
      const held = parseHolder(r.stdout, 'held');
      throw new TargetError('LOCK_LOST', `${this.machine}: ${r.stderr.trim() || 'lock lost'}`, { machine: this.machine, ...(held ? { held } : {}) });
    }
    this.check(r, 'renew the lock');
  }

  async unlock(owner: string, token = 't0'): Promise<void> {
    this.check(await this.call(['unlock', owner, token], undefined, { priority: true }), 'unlock');
  }

  /** Takes back `commit GENERATION` (a rolled-back transition): the generation before it is current again. */
  async uncommit(generation: number): Promise<void> {
    this.check(await this.call(['uncommit', String(generation)]), 'restore the previous generation record');
  }

  /** Which of these artifacts the machine's store lacks. */
  async missing(hashes: readonly string[]): Promise<string[]> {
    if (hashes.length === 0) return [];
    const r = this.check(await this.call(['missing', ...hashes]), 'check the artifact store');
    return r.stdout.split('\n').filter(Boolean);
  }

  async upload(artifacts: readonly { hash: string; entries: readonly ArtifactEntry[] }[]): Promise<void> {
    if (artifacts.length === 0) return;
    this.check(await this.call(['upload'], encodeUpload(artifacts)), 'upload artifacts');
  }

  async activate(item: Item): Promise<RunResult> {
    return this.call(['activate', item.key], encodeFiles(itemSpecFiles(item, this.address)));
  }

  async deactivate(item: Item): Promise<RunResult> {
    return this.call(['deactivate', item.key]);
  }

  /** The state of an active stateful item as bytes on stdout (`stdoutBytes`); the item keeps running. */
  async snapshot(item: Item): Promise<RunResult> {
    return this.call(['snapshot', item.key]);
  }

  /** Replaces an active item's state with a snapshot's bytes (a process is restarted on it). */
  async restore(item: Item, snapshot: Buffer): Promise<RunResult> {
    return this.call(['restore', item.key], snapshot);
  }

  /** Records this machine's part of a generation as its current one. */
  async commit(generation: number, record: MachineRecord): Promise<void> {
    this.check(await this.call(['commit', String(generation)], Buffer.from(JSON.stringify(record))), 'record the generation');
  }

  /** What this machine recorded for its current generation (or GENERATION). */
  async recorded(generation?: number): Promise<MachineRecord | undefined> {
    const r = this.check(await this.call(generation === undefined ? ['manifest'] : ['manifest', String(generation)]), 'read the recorded manifest');
    return r.stdout.trim() ? (JSON.parse(r.stdout) as MachineRecord) : undefined;
  }

  async status(): Promise<MachineStatus> {
    const r = this.check(await this.call(['status']), 'read status');
    const out: MachineStatus = { generation: null, lock: null, items: [] };
    for (const line of r.stdout.split('\n')) {
      const [kind, ...rest] = line.split(' ');
      if (kind === 'generation') out.generation = rest[0] === 'none' ? null : Number(rest[0]);
      else if (kind === 'lock') out.lock = rest.join(' ') === 'none' ? null : rest.join(' ');
      else if (kind === 'item') {
        const [key, module, state, pid, verdict, ...reason] = rest;
        out.items.push({
          key: key!,
          module: module!,
          state: state as ItemStatus['state'],
          ...(pid && pid !== '-' ? { pid: Number(pid) } : {}),
          ...(verdict === 'drift' ? { drift: reason.join(' ') } : {}),
        });
      }
    }
    return out;
  }

  private async call(args: readonly string[], input?: Buffer, opts: { priority?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    const argv = ['sh', '-c', `test -f "$1" || exit ${NOT_INSTALLED}; exec sh "$@"`, 'strata', runtimePath(this.root), this.root, ...args];
    const r = await this.target.run(argv, { input, ...opts });
    if (r.code !== NOT_INSTALLED) return r;
    await this.install();
    return this.target.run(argv, { input, ...opts });
  }

  private async install(): Promise<void> {
    const path = runtimePath(this.root);
    const r = await this.target.run(['sh', '-c', 'mkdir -p "${1%/*}" && cat > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"', 'strata', path], { input: RUNTIME_SCRIPT });
    if (r.code !== 0) throw new TargetError('RUNTIME_INSTALL_FAILED', `cannot install the strata runtime on ${this.machine} under ${this.root}: ${r.stderr.trim()}`, { machine: this.machine });
  }

  private check(r: RunResult, what: string): RunResult {
    if (r.code !== 0) {
      throw new TargetError('RUNTIME_FAILED', `${this.machine}: cannot ${what}: ${r.stderr.trim() || `exit ${r.code}`}`, { machine: this.machine, output: r.stderr });
    }
    return r;
  }
}
