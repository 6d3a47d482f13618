/**
 * The webhook delivery ids seen in the last hour, so that a delivery sent twice (a provider's
 * retry, a "redeliver" click, a replay of a captured request) queues one reconcile only.
 * Memory is bounded: at most `capacity` ids, each forgotten `ttlMs` after it was recorded;
 * when full, the oldest id goes first. Ids are recorded only for authenticated deliveries
 * (the caller's contract), so an unauthenticated sender cannot poison it.
 */
export class DeliveryLog {
  /** key → when it was recorded; a Map keeps insertion order, so the oldest entry is first. */
  private readonly seenAt = new Map<string, number>();

  constructor(
    private readonly opts: { capacity?: number; ttlMs?: number; now?: () => number } = {},
  ) {}

  private get capacity(): number {
    return this.opts.capacity ?? 10_000;
  }

  private get ttlMs(): number {
    return this.opts.ttlMs ?? 3_600_000;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** When `key` was recorded, if that was less than `ttlMs` ago. */
  seen(key: string): number | undefined {
    this.expire();
    return this.seenAt.get(key);
  }

  /** Records `key` now (an id seen again is not renewed: its hour runs from the first delivery). */
  record(key: string): void {
    this.expire();
    if (this.seenAt.has(key)) return;
    while (this.seenAt.size >= this.capacity) this.seenAt.delete(this.seenAt.keys().next().value!);
    this.seenAt.set(key, this.now());
  }

  get size(): number {
    this.expire();
    return this.seenAt.size;
  }

  private expire(): void {
    const cutoff = this.now() - this.ttlMs;
    for (const [key, at] of this.seenAt) {
      if (at > cutoff) break;
      this.seenAt.delete(key);
    }
  }
}
