// Percentiles (nearest rank) shared by the benchmarks in bench/.

/** q-quantile of an ascending-sorted array (nearest rank). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** q-quantile of unsorted values (nearest rank). */
export function quantile(values: number[], q: number): number {
  return quantileSorted([...values].sort((a, b) => a - b), q);
}

export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}
