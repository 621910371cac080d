import { describe, expect, it } from 'vitest';
import { dueAt, effectiveCursor, NO_MORE_RUNS, planRuns, scheduledRunId, scheduleError, type ScheduleSpec } from '../../src/scheduler/schedule.js';

const t = (iso: string) => Date.parse(iso);
const isos = (ms: number[]) => ms.map((m) => new Date(m).toISOString());
const spec = (schedule: string | null, startDate: string | null, catchup: boolean): ScheduleSpec => ({ schedule, startDate, catchup });

describe('scheduled runs (Airflow semantics: a run for [t, next) is created once the interval has ended)', () => {
  it('catchup on: one run per ended interval since startDate, oldest first', () => {
    const plan = planRuns(spec('@hourly', '2026-01-01T00:00:00Z', true), null, t('2026-01-01T03:30:00Z'), 100);
    expect(isos(plan.logicalDates)).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T01:00:00.000Z', '2026-01-01T02:00:00.000Z']);
    expect(plan.next).toBe(t('2026-01-01T03:00:00Z'));
    // The interval [03:00, 04:00) has not ended: due at 04:00.
    expect(dueAt(spec('@hourly', null, true), plan.next!)).toBe(t('2026-01-01T04:00:00Z'));
  });

  it('catchup off: only the latest ended interval', () => {
    const plan = planRuns(spec('@hourly', '2026-01-01T00:00:00Z', false), null, t('2026-01-01T03:30:00Z'), 100);
    expect(isos(plan.logicalDates)).toEqual(['2026-01-01T02:00:00.000Z']);
    expect(plan.next).toBe(t('2026-01-01T03:00:00Z'));
  });

  it('catchup off: a cursor left behind (scheduler was down) jumps to the latest interval', () => {
    const plan = planRuns(spec('@hourly', '2026-01-01T00:00:00Z', false), t('2026-01-01T01:00:00Z'), t('2026-01-01T05:10:00Z'), 100);
    expect(plan.from).toBe(t('2026-01-01T04:00:00Z'));
    expect(isos(plan.logicalDates)).toEqual(['2026-01-01T04:00:00.000Z']);
  });

  it('catchup on: a cursor left behind catches up from where it stood', () => {
    const plan = planRuns(spec('@hourly', '2026-01-01T00:00:00Z', true), t('2026-01-01T03:00:00Z'), t('2026-01-01T05:10:00Z'), 100);
    expect(plan.from).toBe(t('2026-01-01T03:00:00Z'));
    expect(isos(plan.logicalDates)).toEqual(['2026-01-01T03:00:00.000Z', '2026-01-01T04:00:00.000Z']);
  });

  it('an interval that has just ended is due; one that has not is not', () => {
    const s = spec('@daily', '2026-01-01T00:00:00Z', true);
    expect(planRuns(s, null, t('2026-01-01T23:59:59.999Z'), 10).logicalDates).toEqual([]);
    expect(isos(planRuns(s, null, t('2026-01-02T00:00:00Z'), 10).logicalDates)).toEqual(['2026-01-01T00:00:00.000Z']);
  });

  it('creates at most maxRuns (the free active-run slots) and keeps the cursor on the next one', () => {
    const plan = planRuns(spec('@hourly', '2026-01-01T00:00:00Z', true), null, t('2026-01-01T10:00:00Z'), 2);
    expect(isos(plan.logicalDates)).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T01:00:00.000Z']);
    expect(plan.next).toBe(t('2026-01-01T02:00:00Z'));
    expect(planRuns(spec('@hourly', '2026-01-01T00:00:00Z', true), null, t('2026-01-01T10:00:00Z'), 0).logicalDates).toEqual([]);
  });

  it('a start date in the future: nothing yet, first interval starts at the start date', () => {
    for (const catchup of [true, false]) {
      const s = spec('@hourly', '2026-06-01T12:00:00Z', catchup);
      const plan = planRuns(s, null, t('2026-01-01T00:00:00Z'), 10);
      expect(plan.logicalDates).toEqual([]);
      expect(plan.from).toBe(t('2026-06-01T12:00:00Z'));
      expect(dueAt(s, plan.from!)).toBe(t('2026-06-01T13:00:00Z'));
    }
  });

  it('a start date off the schedule starts at the next schedule point', () => {
    expect(effectiveCursor(spec('@hourly', '2026-01-01T00:30:00Z', true), null, t('2026-01-01T00:40:00Z'))).toBe(t('2026-01-01T01:00:00Z'));
    expect(effectiveCursor(spec('*/15 * * * *', '2026-01-01T00:01:00Z', true), null, t('2026-01-01T00:02:00Z'))).toBe(t('2026-01-01T00:15:00Z'));
  });

  it('presets: @daily, @weekly (Sundays), @monthly, @yearly', () => {
    const now = t('2030-01-01T00:00:00Z');
    const first = (schedule: string, start: string) => {
      const s = spec(schedule, start, true);
      const from = effectiveCursor(s, null, now)!;
      return [new Date(from).toISOString(), new Date(dueAt(s, from)).toISOString()];
    };
    expect(first('@daily', '2026-01-01T06:00:00Z')).toEqual(['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z']);
    expect(first('@weekly', '2026-01-01T00:00:00Z')).toEqual(['2026-01-04T00:00:00.000Z', '2026-01-11T00:00:00.000Z']);
    expect(first('@monthly', '2026-01-15T00:00:00Z')).toEqual(['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
    expect(first('@yearly', '2026-01-01T00:00:00Z')).toEqual(['2026-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
    expect(first('0 6 * * 1-5', '2026-01-02T07:00:00Z')).toEqual(['2026-01-05T06:00:00.000Z', '2026-01-06T06:00:00.000Z']);
  });

  it('@once: one run at the start date, then never again', () => {
    const s = spec('@once', '2026-01-01T00:00:00Z', true);
    const plan = planRuns(s, null, t('2026-03-01T00:00:00Z'), 10);
    expect(isos(plan.logicalDates)).toEqual(['2026-01-01T00:00:00.000Z']);
    expect(plan.next).toBe(NO_MORE_RUNS);
    expect(planRuns(s, NO_MORE_RUNS, t('2027-01-01T00:00:00Z'), 10).logicalDates).toEqual([]);
    expect(planRuns(spec('@once', '2026-06-01T00:00:00Z', false), null, t('2026-01-01T00:00:00Z'), 10).logicalDates).toEqual([]);
  });

  it('without a start date, the first interval begins when the DAG is first seen', () => {
    const now = t('2026-01-01T10:20:00Z');
    const plan = planRuns(spec('@hourly', null, true), null, now, 10);
    expect(plan.logicalDates).toEqual([]);
    expect(plan.from).toBe(t('2026-01-01T11:00:00Z'));
  });

  it('a changed schedule moves the stored cursor onto the new schedule, never backwards', () => {
    // Stored for @hourly at 05:00; the DAG now runs every 2 hours on odd hours.
    const from = effectiveCursor(spec('0 1-23/2 * * *', '2026-01-01T00:00:00Z', true), t('2026-01-01T06:00:00Z'), t('2026-01-01T06:10:00Z'));
    expect(from).toBe(t('2026-01-01T07:00:00Z'));
    // A later start date moves the cursor up to it.
    expect(effectiveCursor(spec('@hourly', '2026-02-01T00:00:00Z', true), t('2026-01-01T06:00:00Z'), t('2026-01-01T06:10:00Z'))).toBe(t('2026-02-01T00:00:00Z'));
    // A cursor already on the schedule stays where it is.
    expect(effectiveCursor(spec('@hourly', '2026-01-01T00:00:00Z', true), t('2026-01-01T06:00:00Z'), t('2026-01-01T06:10:00Z'))).toBe(t('2026-01-01T06:00:00Z'));
  });

  it('a DAG without schedule never gets scheduled runs', () => {
    expect(planRuns(spec(null, '2026-01-01T00:00:00Z', true), null, t('2027-01-01T00:00:00Z'), 10)).toEqual({ from: null, logicalDates: [], next: null });
  });

  it('validates schedules and names scheduled runs after their logical date', () => {
    for (const ok of [null, '@once', '@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '*/5 * * * *', '0 6 * * 1-5']) expect(scheduleError(ok)).toBeNull();
    expect(scheduleError('every tuesday')).toMatch(/schedule 'every tuesday' is not a cron expression/);
    expect(scheduleError('61 * * * *')).toMatch(/not a cron expression/);
    expect(scheduledRunId(t('2026-01-01T02:00:00Z'))).toBe('scheduled__2026-01-01T02:00:00.000Z');
  });
});
