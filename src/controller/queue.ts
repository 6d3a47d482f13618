/**
 * A de-duplicating keyed work queue (controller-runtime's workqueue): a key waiting is queued
 * once however often it is added; a key being worked on is never handed out again until its
 * worker finishes (an add meanwhile marks it dirty, and it is queued again afterwards).
 * Delayed adds keep the earliest due time. Keys only: workers re-read all state themselves.
 */
export class KeyedQueue {
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { due: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private closed = false;

  add(key: string): void {
    if (this.closed) return;
    this.clearTimer(key);
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    const waiter = this.waiters.shift();
    if (waiter) {
      this.queued.delete(key);
      this.active.add(key);
      waiter(key);
    } else {
      this.ready.push(key);
    }
  }

  /** Adds key after ms, unless it is due sooner already. */
  addAfter(key: string, ms: number): void {
    if (this.closed) return;
    const due = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.due <= due) return;
    this.clearTimer(key);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { due, timer });
  }

  /** When a delayed key is due (ms since epoch), if it is waiting. */
  dueAt(key: string): number | undefined {
    return this.timers.get(key)?.due;
  }

  /** Resolves with the next key to work on (marking it active), or undefined once closed. */
  next(): Promise<string | undefined> {
    const key = this.ready.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.active.add(key);
      return Promise.resolve(key);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks key's work finished; a key added meanwhile is queued again. */
  done(key: string): void {
    this.active.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  isActive(key: string): boolean {
    return this.active.has(key);
  }

  get length(): number {
    return this.ready.length;
  }

  /** Stops handing out work: pending timers are dropped and waiting workers get undefined. */
  close(): void {
    this.closed = true;
    for (const k of [...this.timers.keys()]) this.clearTimer(k);
    this.ready.length = 0;
    this.queued.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private clearTimer(key: string): void {
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t.timer);
      this.timers.delete(key);
    }
  }
}
