// Summary statistics over latency samples (milliseconds).

/** Percentile (nearest-rank) of an already sorted Float64Array; NaN when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** {count, mean, p50, p90, p99, max} of the first `count` entries of `samples`, rounded to 0.01 ms. */
export function summarize(samples, count) {
  const sorted = Float64Array.from(samples.subarray(0, count)).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  const r = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
  return {
    count: sorted.length,
    mean_ms: r(sum / sorted.length),
    p50_ms: r(percentile(sorted, 50)),
    p90_ms: r(percentile(sorted, 90)),
    p99_ms: r(percentile(sorted, 99)),
    max_ms: r(sorted.length ? sorted[sorted.length - 1] : NaN),
  };
}

/** CPU seconds (user + system) this process used since `start` (a process.cpuUsage() value). */
export function cpuSeconds(start) {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
}
