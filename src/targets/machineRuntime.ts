import { TargetError } from '../errors.ts';
import { IDENTIFIER } from '../model/schema.ts';
import { answerBounds } from './answerBounds.ts';
import { parseActivations, parseHeld, parseLockTaken, parseStatus } from './answers.ts';
import { parseOtherRecords, parseRecord } from './recordAnswers.ts';
import type { Item } from '../manifest/types.ts';
import { itemSpecFiles } from './itemSpec.ts';
import { machineText } from './machineText.ts';
import { PEEK_SCRIPT } from './recordPeek.ts';
import { installRefusal, installScript } from './runtime/install.ts';
import { EXIT, LAYOUT } from './runtime/protocol.ts';
import { runtimePath, runtimeScript } from './runtime/script.ts';
import { encodeActivation, encodeSpec, encodeUpload } from './stream.ts';
import type { BrokenLock, LockRequest, MachineRecord, MachineRuntime, MachineStatus, OtherDeployment, UploadArtifact } from './runtimeApi.ts';
import type { RunOptions, RunResult, Target } from './target.ts';

/** Exit codes of the command wrapper and the runtime (the protocol's). */
const { NOT_INSTALLED, LOCKED } = EXIT;
/** Items activated by one command at most. */
const MAX_BATCH = 64;

function leaseSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

interface QueuedActivation {
  key: string;
  spec: Buffer;
  resolve: (r: RunResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The controller's side of the target runtime: one method per runtime verb, each one
 * command on the machine. The runtime is installed (content-addressed) the first time a
 * verb finds it missing, so a machine that has it costs no extra round trip; one that is
 * expected to lack it gets it with the first command (`expectFresh`).
 */
export class ShellMachineRuntime implements MachineRuntime {
  private sendRuntime = false;
  private openBatch?: { keys: Set<string>; queued: QueuedActivation[] };

  /** This deployment's directory on the machine (ROOT/deployments/NAME): its items, state, generations, lock. */
  readonly deploymentRoot: string;

  /**
   * `root` is the machine's runtime root, shared by every deployment on it (the store and the
   * runtime live there); `deployment` is the one this runtime acts for: every verb reads and
   * changes only that deployment's records and items.
   */
  constructor(
    readonly target: Target,
    readonly root: string,
    readonly address: string,
    readonly deployment: string,
    /** The most a snapshot answer may be (src/targets/answerBounds.ts). */
    private readonly maxSnapshotBytes?: number,
  ) {
    // The name becomes a directory on the machine: only a model identifier may (the runtime checks again).
    if (!IDENTIFIER.test(deployment)) throw new TargetError('DEPLOYMENT_NAME_INVALID', `unsafe deployment name ${JSON.stringify(deployment)}: expected a letter, then letters, digits, "-" or "_"`, { deployment });
    this.deploymentRoot = `${root.replace(/\/+$/, '')}/${LAYOUT.deployments}/${deployment}`;
  }

  /**
   * The machine probably has no runtime yet (it is new to the deployment): the next command
   * carries it and installs it first when it is missing, which saves finding out by a round trip.
   */
  expectFresh(): void {
    this.sendRuntime = true;
  }

  get machine(): string {
    return this.target.machine;
  }

  get bytesSent(): number {
    return this.target.bytesSent;
  }

  close(): Promise<void> {
    return this.target.close();
  }

  /**
   * Takes the machine lock for `leaseMs` (renews it when `token` already holds it). A lock whose
   * lease expired, or held by `breakToken`, is broken and taken: `broke` says whose it was.
   * Held by anyone else: MACHINE_LOCKED, with the holder in `data.held`.
   */
  async lock(req: string | LockRequest, hashes: readonly string[] = [], upload?: readonly UploadArtifact[]): Promise<{ broke?: BrokenLock; missing: string[] }> {
    const { owner, token = 't0', pid = 0, leaseMs = 60_000, breakToken } = typeof req === 'string' ? { owner: req } : req;
    // With artifacts to upload (a machine whose store is known to be empty), the lock command
    // stores them once the lock is taken: the hashes named are those sent.
    const named = upload ? upload.map((a) => a.hash) : hashes;
    const args = [upload ? 'lock-upload' : 'lock', owner, token, String(pid), String(leaseSeconds(leaseMs)), ...(breakToken || named.length ? [breakToken ?? '-'] : []), ...named];
    // Re-taking a lock waits on the machine for commands of a dead holder still running (up to 90 s).
    const r = await this.call(args, upload ? encodeUpload(upload) : undefined, { priority: true, timeoutMs: upload ? undefined : 100_000 });
    if (r.code === LOCKED) {
      const held = parseHeld(this.machine, args[0]!, r.stdout);
      throw new TargetError('MACHINE_LOCKED', `${this.machine} is ${r.stderr.trim() || 'locked'}`, { machine: this.machine, ...(held ? { held } : {}) });
    }
    this.check(r, 'take the lock');
    return parseLockTaken(this.machine, args[0]!, r.stdout, upload ? [] : named);
  }

  /** Extends the lease of the lock `token` holds; MACHINE_LOCKED (LOCK_LOST) when it lost it. */
  async renew(owner: string, token: string, leaseMs: number, opts: { timeoutMs?: number } = {}): Promise<void> {
    const r = await this.call(['renew', owner, token, String(leaseSeconds(leaseMs))], undefined, { priority: true, ...opts });
    if (r.code === LOCKED) {
      const held = parseHeld(this.machine, 'renew', r.stdout);
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

  async upload(artifacts: readonly UploadArtifact[]): Promise<void> {
    if (artifacts.length === 0) return;
    this.check(await this.call(['upload', ...artifacts.map((a) => a.hash)], encodeUpload(artifacts)), 'upload artifacts');
  }

  /**
   * Activates an item. Activations asked for in the same turn of the event loop (the steps of
   * a machine that became ready together) go to the machine as one command, whose processes
   * start together and are waited for together; each still resolves with its own result.
   */
  activate(item: Item): Promise<RunResult> {
    const spec = encodeSpec(itemSpecFiles(item, this.address));
    return new Promise((resolve, reject) => {
      let batch = this.openBatch;
      if (!batch || batch.keys.has(item.key) || batch.queued.length >= MAX_BATCH) {
        const opened = { keys: new Set<string>(), queued: [] as QueuedActivation[] };
        batch = this.openBatch = opened;
        setImmediate(() => {
          if (this.openBatch === opened) this.openBatch = undefined;
          void this.runActivations(opened.queued);
        });
      }
      batch.keys.add(item.key);
      batch.queued.push({ key: item.key, spec, resolve, reject });
    });
  }

  private async runActivations(batch: QueuedActivation[]): Promise<void> {
    let r: RunResult;
    try {
      r = await this.call(['activate', ...batch.map((q) => q.key)], encodeActivation(batch.map((q) => q.spec)));
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    let results: Map<string, RunResult>;
    try {
      results = parseActivations(this.machine, r.stdoutBytes, batch.map((q) => q.key));
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    for (const q of batch) {
      const own = results.get(q.key);
      // No line for it: the command ended before it got that far (its stderr says why).
      q.resolve(own ?? { ...r, code: r.code === 0 ? 1 : r.code, stderr: r.stderr || `no result for ${q.key} from the runtime` });
    }
  }

  async deactivate(item: Item): Promise<RunResult> {
    return this.call(['deactivate', item.key]);
  }

  /**
   * The state of an active stateful item, written to `file` (created new, 0600) as it arrives:
   * `stdoutFile` has its size and sha256. The item keeps running. At most maxSnapshotBytes.
   */
  async snapshot(item: Item, file: string): Promise<RunResult> {
    return this.call(['snapshot', item.key], undefined, { stdoutFile: file });
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
    return parseRecord(this.machine, r.stdout, generation);
  }

  async peekRecord(generation?: number): Promise<MachineRecord | undefined> {
    const verb = generation === undefined ? ['manifest'] : ['manifest', String(generation)];
    // Bounded like every answer to `manifest`, and parsed by the same strict reader.
    const r = await this.target.run(this.command(PEEK_SCRIPT, verb), answerBounds('manifest'));
    if (r.code === EXIT.NOT_INSTALLED) return this.recorded(generation);
    if (r.code !== 0) throw new TargetError('RUNTIME_FAILED', `${this.machine}: cannot read the recorded manifest: ${machineText(r.stderr.trim(), 500, true) || `exit ${r.code}`}`, { machine: this.machine });
    return parseRecord(this.machine, r.stdout, generation);
  }

  /**
   * What the other deployments on this machine hold: each one's current generation record
   * (read-only; a machine without other deployments answers with nothing).
   */
  async others(): Promise<OtherDeployment[]> {
    const r = this.check(await this.call(['claims']), 'read the other deployments\' records');
    return parseOtherRecords(this.machine, r.stdoutBytes);
  }

  /**
   * Announces the record this deployment's transition is making true on the machine (its lock
   * held), so other deployments see its claims meanwhile, and answers as `others` does.
   */
  async claim(record: MachineRecord): Promise<OtherDeployment[]> {
    const r = this.check(await this.call(['claim'], Buffer.from(JSON.stringify(record))), 'announce what the transition claims');
    return parseOtherRecords(this.machine, r.stdoutBytes);
  }

  async status(): Promise<MachineStatus> {
    const r = this.check(await this.call(['status']), 'read status');
    return parseStatus(this.machine, r.stdout);
  }

  private async call(args: readonly string[], input?: Buffer, callOpts: CallOptions = {}): Promise<RunResult> {
    // Every answer is bounded by its verb (answers.ts): a machine cannot make the controller hold more.
    const opts = { ...answerBounds(args[0]!, this.maxSnapshotBytes), ...callOpts };
    if (this.sendRuntime) {
      this.sendRuntime = false;
      return this.callInstalling(args, input, opts);
    }
    const argv = this.command(`test -f "$1" || exit ${NOT_INSTALLED}; exec sh "$@"`, args);
    const r = await this.target.run(argv, { input, ...opts });
    if (r.code !== NOT_INSTALLED) return r;
    await this.install();
    return this.target.run(argv, { input, ...opts });
  }

  /**
   * A runtime command behind `wrapper`, a fixed sh script that gets $1 the runtime, $2 the
   * deployment's directory and then `args`: every value travels as an argument, never in the script.
   */
  private command(wrapper: string, args: readonly string[]): string[] {
    return ['sh', '-c', wrapper, 'strata', runtimePath(this.root), this.deploymentRoot, ...args];
  }

  /** A call whose input starts with the runtime, which the wrapper installs when it is missing. */
  private async callInstalling(args: readonly string[], input: Buffer | undefined, opts: CallOptions): Promise<RunResult> {
    const { script } = runtimeScript();
    const argv = this.command(installScript(script.byteLength, true), args);
    return this.installed(await this.target.run(argv, { input: Buffer.concat([script, input ?? Buffer.alloc(0)]), ...opts }));
  }

  private async install(): Promise<void> {
    const { script } = runtimeScript();
    const argv = ['sh', '-c', installScript(script.byteLength, false), 'strata', runtimePath(this.root)];
    // Only installing: any failure is the install's.
    this.installed(await this.target.run(argv, { input: script, verb: 'install' }), true);
  }

  /** The install command's result, or its refusal (install.ts: TARGET_UNSUPPORTED, RUNTIME_INSTALL_FAILED). */
  private installed(r: RunResult, onlyInstall = false): RunResult {
    const refusal = installRefusal(this.machine, this.root, r, onlyInstall);
    if (refusal) throw refusal;
    return r;
  }

  private check(r: RunResult, what: string): RunResult {
    if (r.code !== 0) {
      throw new TargetError('RUNTIME_FAILED', `${this.machine}: cannot ${what}: ${r.stderr.trim() || `exit ${r.code}`}`, { machine: this.machine, output: r.stderr });
    }
    return r;
  }
}

/** How a runtime call is run: see RunOptions. */
type CallOptions = Pick<RunOptions, 'priority' | 'timeoutMs' | 'stdoutFile'>;
