/** Small statistics over arrays of numbers. Percentiles use the nearest-rank method. */

export function sorted(values) {
  return [...values].sort((a, b) => a - b);
}

export function percentile(values, p) {
  if (values.length === 0) return null;
  const s = sorted(values);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

export const median = (values) => percentile(values, 50);
export const p99 = (values) => percentile(values, 99);

export function mean(values) {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

export function min(values) {
  return values.length === 0 ? null : Math.min(...values);
}

export function max(values) {
  return values.length === 0 ? null : Math.max(...values);
}

/** { median, min, max, n } of a list of repetitions: what the report prints as "median (min-max)". */
export function summary(values) {
  return { median: median(values), min: min(values), max: max(values), n: values.length };
}

/** a / b, or null when either side is missing or b is 0. */
export function ratio(a, b) {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}
