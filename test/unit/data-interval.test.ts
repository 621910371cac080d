import { describe, expect, it } from 'vitest';
import { manualInterval, scheduledInterval } from '../../src/scheduler/data-interval.js';

const t = (iso: string) => Date.parse(iso);
const iv = (i: { dataIntervalStart: number; dataIntervalEnd: number }) => [new Date(i.dataIntervalStart).toISOString(), new Date(i.dataIntervalEnd).toISOString()];

describe('data intervals', () => {
  it('gives a scheduled run [t, next(t))', () => {
    expect(iv(scheduledInterval('@hourly', t('2026-11-25T06:00:00Z')))).toEqual(['2026-11-25T06:00:00.000Z', '2026-11-25T07:00:00.000Z']);
    expect(iv(scheduledInterval('@daily', t('2026-11-25T00:00:00Z')))).toEqual(['2026-11-25T00:00:00.000Z', '2026-11-26T00:00:00.000Z']);
    expect(iv(scheduledInterval('@monthly', t('2026-02-01T00:00:00Z')))).toEqual(['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
    expect(iv(scheduledInterval('*/15 * * * *', t('2026-11-25T06:15:00Z')))).toEqual(['2026-11-25T06:15:00.000Z', '2026-11-25T06:30:00.000Z']);
  });

  it('gives a manual run the last complete interval ending at or before its logical date', () => {
    // Airflow's example: a daily DAG triggered at 01:00 on the 25th covers [24th, 25th).
    expect(iv(manualInterval('@daily', t('2026-11-25T01:00:00Z')))).toEqual(['2026-11-24T00:00:00.000Z', '2026-11-25T00:00:00.000Z']);
    expect(iv(manualInterval('@hourly', t('2026-11-25T06:59:59.999Z')))).toEqual(['2026-11-25T05:00:00.000Z', '2026-11-25T06:00:00.000Z']);
    expect(iv(manualInterval('@monthly', t('2026-03-15T12:00:00Z')))).toEqual(['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
  });

  it('on a schedule point b covers [prev(b), b)', () => {
    expect(iv(manualInterval('@daily', t('2026-11-25T00:00:00Z')))).toEqual(['2026-11-24T00:00:00.000Z', '2026-11-25T00:00:00.000Z']);
    expect(iv(manualInterval('@hourly', t('2026-11-25T06:00:00Z')))).toEqual(['2026-11-25T05:00:00.000Z', '2026-11-25T06:00:00.000Z']);
    expect(iv(manualInterval('@monthly', t('2026-03-01T00:00:00Z')))).toEqual(['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
  });

  it('without a schedule (or @once) is the empty interval at the logical date', () => {
    const at = t('2026-11-25T01:02:03Z');
    for (const schedule of [null, '@once']) {
      expect(manualInterval(schedule, at)).toEqual({ dataIntervalStart: at, dataIntervalEnd: at });
      expect(scheduledInterval(schedule, at)).toEqual({ dataIntervalStart: at, dataIntervalEnd: at });
    }
  });
});
