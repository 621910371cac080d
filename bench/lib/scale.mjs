/**
 * How much of each case to run. `full` is the published run (under 20 minutes on the
 * 2-core reference machine), `quick` a sanity run (under 2 minutes), `smoke` the smallest
 * thing that still exercises every code path of a case (the harness test).
 */
export const SCALES = ['smoke', 'quick', 'full'];

/** Picks the value for the current scale from { smoke, quick, full } (smoke falls back to quick). */
export function pick(scale, values) {
  if (scale === 'smoke' && values.smoke === undefined) return values.quick;
  return values[scale];
}
