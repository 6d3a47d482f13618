/** Summary figures over repeated runs: median, min and max (the runs are few, so no mean/stddev). */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Every run's value, in run order. */
  runs: number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarise(values: readonly number[]): Summary {
  return {
    median: median(values),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
    runs: [...values],
  };
}

/** Milliseconds since `t0` (a `performance.now()` reading), rounded to 0.1 ms. */
export function msSince(t0: number): number {
  return round1(performance.now() - t0);
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
