/** Retry delays: base × 2^(failures−1), capped, with ±20 % jitter so retries don't align. */
export function backoffDelay(failures: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 5_000;
  const max = opts.maxMs ?? 300_000;
  const raw = Math.min(max, base * 2 ** Math.max(0, failures - 1));
  return Math.round(withJitter(raw, 0.2, opts.random));
}

/** ms ± fraction × ms, uniformly. */
export function withJitter(ms: number, fraction = 0.1, random: () => number = Math.random): number {
  return ms * (1 - fraction + 2 * fraction * random());
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}
