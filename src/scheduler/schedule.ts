/**
 * When scheduled runs are due: cron expressions and presets, with Airflow's semantics. Pure.
 *
 * A scheduled run covers a data interval [t, next(t)) and its logical date is t, the start of
 * the interval. It is created once the interval has ended, at next(t). The store keeps one
 * cursor per DAG (`dag.next_run_at`): the logical date of the next run not yet created.
 *
 * - The first logical date is the first schedule point at or after `startDate` (or after the
 *   moment the DAG was first seen, when it has no start date).
 * - catchup on: one run per interval from there on, oldest first.
 * - catchup off: when the cursor is more than one interval behind, it jumps to the latest
 *   complete interval, so only that one runs.
 * - '@once': one run, due at the start date, and then nothing more (cursor NO_MORE_RUNS).
 *
 * Every time is epoch milliseconds, every calendar computation is in UTC.
 */
import { CronExpressionParser } from 'cron-parser';

export interface ScheduleSpec {
  schedule: string | null;
  /** ISO date-time, or null. */
  startDate: string | null;
  catchup: boolean;
}

/** Cursor value for a schedule with no further runs ('@once' after its run): never due. */
export const NO_MORE_RUNS = 8.64e15;

/** Airflow's presets that cron-parser does not know, as plain cron. */
const PRESETS: Record<string, string> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
};

export const ONCE = '@once';

/** Null when `schedule` is usable, else why not (reported as the DAG file's import error). */
export function scheduleError(schedule: string | null): string | null {
  if (schedule === null || schedule === ONCE) return null;
  try {
    CronExpressionParser.parse(cronOf(schedule), { tz: 'UTC' });
    return null;
  } catch (err) {
    return `schedule '${schedule}' is not a cron expression or a preset (@once, @hourly, @daily, @weekly, @monthly, @yearly): ${(err as Error).message}`;
  }
}

/** The first schedule point strictly after `t`. */
export function pointAfter(schedule: string, t: number): number {
  return CronExpressionParser.parse(cronOf(schedule), { currentDate: t, tz: 'UTC' }).next().getTime();
}

/** The last schedule point strictly before `t`, or null when there is none. */
export function pointBefore(schedule: string, t: number): number | null {
  const expr = CronExpressionParser.parse(cronOf(schedule), { currentDate: t, tz: 'UTC' });
  return expr.hasPrev() ? expr.prev().getTime() : null;
}

/** When the run with logical date `cursor` may be created: the end of its interval. */
export function dueAt(spec: ScheduleSpec, cursor: number): number {
  if (cursor >= NO_MORE_RUNS || spec.schedule === null) return NO_MORE_RUNS;
  return spec.schedule === ONCE ? cursor : pointAfter(spec.schedule, cursor);
}

/** The logical date after `cursor`'s run is created. */
export function followingCursor(spec: ScheduleSpec, cursor: number): number {
  if (spec.schedule === null || spec.schedule === ONCE) return NO_MORE_RUNS;
  return pointAfter(spec.schedule, cursor);
}

/**
 * The cursor to work from, given the stored one: initialised when missing, moved onto the
 * schedule when the schedule or start date changed under it, and with catchup off moved up
 * to the latest complete interval. Returns `stored` itself when nothing changes; null for a
 * DAG without a schedule.
 */
export function effectiveCursor(spec: ScheduleSpec, stored: number | null, now: number): number | null {
  const { schedule } = spec;
  if (schedule === null) return stored;
  const start = spec.startDate === null ? null : Date.parse(spec.startDate);
  if (schedule === ONCE) {
    if (stored !== null) return stored;
    return start ?? now;
  }
  const known = stored !== null && stored < NO_MORE_RUNS ? stored : null;
  // The earliest moment the cursor may stand at: where it stood before and the start date;
  // a DAG first seen without a start date starts now.
  const floor = Math.max(known ?? -Infinity, start ?? (known ?? now));
  // The first schedule point at or after the floor.
  let cursor = pointAfter(schedule, floor - 1);
  if (!spec.catchup) {
    // The latest interval that has ended by now: [latest, next(latest)) with next(latest) <= now.
    const lastPoint = pointBefore(schedule, now + 1);
    const latest = lastPoint === null ? null : pointBefore(schedule, lastPoint);
    if (latest !== null && latest > cursor) cursor = latest;
  }
  return cursor;
}

export interface RunPlan {
  /** The cursor the plan starts from (differs from the stored one when it was moved). */
  from: number | null;
  /** Logical dates of the runs to create now, oldest first. */
  logicalDates: number[];
  /** The cursor after those runs. */
  next: number | null;
}

/**
 * The scheduled runs due at `now`, at most `maxRuns` of them (the DAG's free active-run
 * slots), and where the cursor ends up.
 */
export function planRuns(spec: ScheduleSpec, stored: number | null, now: number, maxRuns: number): RunPlan {
  const from = effectiveCursor(spec, stored, now);
  const logicalDates: number[] = [];
  let cursor = from;
  while (cursor !== null && logicalDates.length < maxRuns && dueAt(spec, cursor) <= now) {
    logicalDates.push(cursor);
    cursor = followingCursor(spec, cursor);
  }
  return { from, logicalDates, next: cursor };
}

/** The run id of a scheduled run: deterministic, so two schedulers can never create it twice. */
export function scheduledRunId(logicalDate: number): string {
  return `scheduled__${new Date(logicalDate).toISOString()}`;
}

function cronOf(schedule: string): string {
  return PRESETS[schedule] ?? schedule;
}
