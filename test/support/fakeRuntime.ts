import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { TargetError } from '../../src/errors.ts';
import type { Item, MachineManifest } from '../../src/manifest/types.ts';
import type { BrokenLock, LockHolder, LockRequest, MachineRecord, MachineRuntime, MachineStatus, OtherDeployment, UploadArtifact } from '../../src/targets/runtimeApi.ts';
import type { RunResult } from '../../src/targets/target.ts';

/**
 * An in-memory machine for unit tests of the transition core (src/apply): what the runtime
 * (src/targets/runtime/, docs/runtime.md) keeps on a machine for one deployment — its items,
 * its generation records and which is current, its lock, its store, its stateful items' data —
 * without a shell or a connection. FakeRuntime is a MachineRuntime over one; a test can tell it
 * to fail a step (`failStep`) and can "kill" the process using it (`Life`).
 */
export class FakeMachine {
  /** Active items by key, as activated. */
  readonly items = new Map<string, Item>();
  /** Generation records by number, and the numbers made current, in order. */
  readonly records = new Map<number, MachineRecord>();
  readonly history: number[] = [];
  lock: LockHolder | null = null;
  readonly store = new Set<string>();
  /** A stateful item's data, by key (what snapshot reads and restore writes). */
  readonly data = new Map<string, string>();
  /** Steps told to fail: `activate KEY` or `deactivate KEY`. */
  readonly failStep = new Set<string>();
  /** Seconds on the machine's clock (moved by tests to expire leases). */
  now = 1_000_000;
  /** Unreachable: every command fails as a refused connection does (CONNECT_FAILED). */
  down = false;

  constructor(readonly name: string) {}

  get generation(): number | null {
    return this.history.length ? this.history[this.history.length - 1]! : null;
  }

  current(): MachineRecord | undefined {
    const g = this.generation;
    return g === null ? undefined : this.records.get(g);
  }
}

/** A process that can die: once dead, everything it does on a machine or a store fails. */
export class Life {
  dead = false;
  private effects = 0;

  /** `dieAfter`: the process dies right after its Nth machine command of that verb took effect. */
  constructor(private readonly dieAfter?: { verb: string; count: number }) {}

  check(): void {
    if (this.dead) throw new Crash();
  }

  /** Called after a command's effect on a machine. */
  did(verb: string): void {
    if (this.dieAfter?.verb !== verb || ++this.effects < this.dieAfter.count) return;
    this.dead = true;
    throw new Crash();
  }
}

/** What a dead process's calls throw (never a StrataError: nothing handles it as a machine's answer). */
export class Crash extends Error {
  constructor() {
    super('the process died');
  }
}

const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stdoutBytes: Buffer.from(stdout), stderr: '' });
const failed = (stderr: string): RunResult => ({ code: 1, stdout: '', stdoutBytes: Buffer.alloc(0), stderr });

export class FakeRuntime implements MachineRuntime {
  bytesSent = 0;

  constructor(
    readonly m: FakeMachine,
    readonly deployment: string,
    private readonly life: Life,
  ) {}

  get machine(): string {
    return this.m.name;
  }

  expectFresh(): void {}

  lock(req: string | LockRequest, hashes: readonly string[] = [], upload?: readonly UploadArtifact[]): Promise<{ broke?: BrokenLock; missing: string[] }> {
    return this.round(() => {
      const r: LockRequest = typeof req === 'string' ? { owner: req } : req;
      const token = r.token ?? 't0';
      const held = this.m.lock;
      let broke: BrokenLock | undefined;
      if (held && held.token !== token) {
        if (held.expiresAt > this.m.now && r.breakToken !== held.token) {
          throw new TargetError('MACHINE_LOCKED', `${this.machine} is locked by ${held.owner}`, { machine: this.machine, held: { ...held, now: this.m.now } });
        }
        broke = { ...held, now: this.m.now, why: held.expiresAt <= this.m.now ? 'expired' : 'dead-owner' };
      }
      const leaseS = Math.max(1, Math.ceil((r.leaseMs ?? 60_000) / 1000));
      this.m.lock = { owner: r.owner, token, pid: r.pid ?? null, takenAt: this.m.now, expiresAt: this.m.now + leaseS, now: this.m.now };
      for (const a of upload ?? []) this.m.store.add(a.hash);
      return { ...(broke ? { broke } : {}), missing: hashes.filter((h) => !this.m.store.has(h)) };
    });
  }

  renew(owner: string, token: string, leaseMs: number): Promise<void> {
    return this.round(() => {
      if (this.m.lock?.token !== token) throw new TargetError('LOCK_LOST', `${this.machine}: lock lost`, { machine: this.machine });
      this.m.lock = { ...this.m.lock, owner, expiresAt: this.m.now + Math.ceil(leaseMs / 1000) };
    });
  }

  unlock(_owner: string, token = 't0'): Promise<void> {
    return this.round(() => {
      if (this.m.lock?.token === token) this.m.lock = null;
    });
  }

  upload(artifacts: readonly UploadArtifact[]): Promise<void> {
    return this.round(() => {
      for (const a of artifacts) {
        this.m.store.add(a.hash);
        this.bytesSent += a.entries.reduce((n, e) => n + e.content.byteLength, 0);
      }
    });
  }

  activate(item: Item): Promise<RunResult> {
    return this.round(() => {
      if (this.m.failStep.has(`activate ${item.key}`)) return failed(`${item.name}: told to fail`);
      if (item.artifact && !this.m.store.has(item.artifact)) return failed(`artifact ${item.artifact} is not in the store`);
      this.m.items.set(item.key, item);
      if (item.stateful && !this.m.data.has(item.key)) this.m.data.set(item.key, '');
      this.life.did('activate');
      return ok();
    });
  }

  deactivate(item: Item): Promise<RunResult> {
    return this.round(() => {
      if (this.m.failStep.has(`deactivate ${item.key}`)) return failed(`${item.name}: told to fail`);
      this.m.items.delete(item.key);
      this.life.did('deactivate');
      return ok();
    });
  }

  snapshot(item: Item, file: string): Promise<RunResult> {
    return this.round(() => {
      const bytes = Buffer.from(this.m.data.get(item.key) ?? '');
      writeFileSync(file, bytes);
      return { ...ok(), stdoutBytes: Buffer.alloc(0), stdoutFile: { path: file, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') } };
    });
  }

  restore(item: Item, snapshot: Buffer): Promise<RunResult> {
    return this.round(() => {
      this.m.data.set(item.key, snapshot.toString());
      return ok();
    });
  }

  commit(generation: number, record: MachineRecord): Promise<void> {
    return this.round(() => {
      this.m.records.set(generation, record);
      this.m.history.push(generation);
      this.life.did('commit');
    });
  }

  uncommit(generation: number): Promise<void> {
    return this.round(() => {
      if (this.m.generation === generation) this.m.history.pop();
    });
  }

  recorded(generation?: number): Promise<MachineRecord | undefined> {
    return this.round(() => {
      return generation === undefined ? this.m.current() : this.m.records.get(generation);
    });
  }

  /** A fake machine has nothing installed to leave alone: the same as recorded. */
  peekRecord(generation?: number): Promise<MachineRecord | undefined> {
    return this.recorded(generation);
  }

  others(): Promise<OtherDeployment[]> {
    return this.round(() => {
      return [];
    });
  }

  claim(): Promise<OtherDeployment[]> {
    return this.round(() => {
      return [];
    });
  }

  status(): Promise<MachineStatus> {
    return this.round(() => {
      return { generation: this.m.generation, lock: this.m.lock?.owner ?? null, items: [...this.m.items.values()].map((i) => ({ key: i.key, module: i.module, state: 'running' })) };
    });
  }

  async close(): Promise<void> {}

  /** A round trip: lets other work interleave; its effect happens at once, unless the process died meanwhile. */
  private async round<T>(effect: () => T): Promise<T> {
    this.life.check();
    await Promise.resolve();
    this.life.check();
    if (this.m.down) throw new TargetError('CONNECT_FAILED', `cannot connect to ${this.machine}: connection refused`, { machine: this.machine });
    return effect();
  }
}

/** Machines by name, and a runtime factory over them for one process (`life`). */
export class FakeFleet {
  readonly machines = new Map<string, FakeMachine>();

  machine(name: string): FakeMachine {
    let m = this.machines.get(name);
    if (!m) this.machines.set(name, (m = new FakeMachine(name)));
    return m;
  }

  runtimeFor(deployment: string, life: Life): (m: MachineManifest) => FakeRuntime {
    return (m) => new FakeRuntime(this.machine(m.name), deployment, life);
  }
}
