/**
 * Which slice of time a run covers, decided once when the run is created and stored with it
 * (never recomputed, so editing a DAG's schedule leaves existing runs alone). Airflow's
 * semantics:
 * - a scheduled (or backfill) run with logical date t covers [t, next(t));
 * - a manual run covers the last complete interval ending at or before its logical date
 *   (Airflow's infer_manual_data_interval: a daily DAG triggered at 01:00 on the 25th covers
 *   [24th, 25th); a trigger exactly on a schedule point b covers [prev(b), b));
 * - without a schedule (or @once) the interval is the empty one at the logical date.
 */
import type { DataInterval } from '../store/types.js';
import { pointAfter, pointBefore, ONCE } from './schedule.js';

const empty = (t: number): DataInterval => ({ dataIntervalStart: t, dataIntervalEnd: t });

export function scheduledInterval(schedule: string | null, logicalDate: number): DataInterval {
  if (schedule === null || schedule === ONCE) return empty(logicalDate);
  return { dataIntervalStart: logicalDate, dataIntervalEnd: pointAfter(schedule, logicalDate) };
}

export function manualInterval(schedule: string | null, logicalDate: number): DataInterval {
  if (schedule === null || schedule === ONCE) return empty(logicalDate);
  const end = pointBefore(schedule, logicalDate + 1); // the latest schedule point <= logicalDate
  if (end === null) return empty(logicalDate);
  const start = pointBefore(schedule, end);
  return start === null ? empty(logicalDate) : { dataIntervalStart: start, dataIntervalEnd: end };
}
