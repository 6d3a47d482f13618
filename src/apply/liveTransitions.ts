/**
 * The lock tokens of the transitions (and recoveries) running in this process, to tell a lock of
 * ours whose transition is gone (safe to break at once) from one still in use (src/apply/machineLocks.ts).
 * Owned by whoever runs transitions — one per CLI run or controller, made where the state store
 * is made and passed to every apply and recovery — rather than kept in a module.
 */
export class LiveTransitions {
  private readonly tokens = new Set<string>();

  /** Marks the token live for the duration of `run`. */
  async during<T>(token: string, run: () => Promise<T>): Promise<T> {
    this.tokens.add(token);
    try {
      return await run();
    } finally {
      this.tokens.delete(token);
    }
  }

  has(token: string): boolean {
    return this.tokens.has(token);
  }
}
