/**
 * kiln's task priority as BullMQ's. Pure.
 *
 * BullMQ orders a queue's waiting jobs by priority, 1 the highest; a job with none (0) goes
 * ahead of every prioritized one.
 */
const BULL_PRIORITY_MAX = 2_097_151;
const BULL_PRIORITY_MIDDLE = 1_048_576;

/**
 * kiln's priorityWeight (higher first, any integer, default 1) as a BullMQ job priority (lower
 * first). Every job gets one, so jobs without one cannot jump ahead; weights beyond about a
 * million either way share the end of the range.
 */
export function bullPriority(priorityWeight: number): number {
  return Math.min(BULL_PRIORITY_MAX, Math.max(1, BULL_PRIORITY_MIDDLE - Math.trunc(priorityWeight)));
}
