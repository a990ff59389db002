/** Percentiles by nearest rank over raw samples: no interpolation, so p99 is a value that was seen. */

export interface Summary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** `sorted` ascending; `p` in (0, 100]. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((total, x) => total + x, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
  };
}

/** Milliseconds to three decimals: enough for sub-millisecond floors, short in the JSON. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1_000) / 1_000;
}

export function roundSummary(summary: Summary): Summary {
  const { count, ...rest } = summary;
  const rounded = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, roundMs(v)]));
  return { count, ...(rounded as Omit<Summary, 'count'>) };
}
