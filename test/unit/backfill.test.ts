import { describe, expect, it } from 'vitest';
import { backfillDates, backfillRunId, dateAction, MAX_BACKFILL_DATES } from '../../src/scheduler/backfill.js';
import type { RunRow } from '../../src/store/types.js';

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number[]) => ms.map((m) => new Date(m).toISOString());

describe('backfillDates', () => {
  it('lists the schedule points from --from to --to inclusive, oldest first or newest first', () => {
    const daily = { dagId: 'd', schedule: '@daily' };
    expect(iso(backfillDates(daily, t('2026-01-01T00:00:00Z'), t('2026-01-03T00:00:00Z')))).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z']);
    // A --from between points starts at the next one; --to between points ends at the one before.
    expect(iso(backfillDates(daily, t('2026-01-01T06:00:00Z'), t('2026-01-03T05:00:00Z'), true))).toEqual(['2026-01-03T00:00:00.000Z', '2026-01-02T00:00:00.000Z']);
    expect(iso(backfillDates({ dagId: 'h', schedule: '@hourly' }, t('2026-01-01T22:30:00Z'), t('2026-01-02T01:00:00Z')))).toEqual(['2026-01-01T23:00:00.000Z', '2026-01-02T00:00:00.000Z', '2026-01-02T01:00:00.000Z']);
    expect(iso(backfillDates({ dagId: 'm', schedule: '@monthly' }, t('2026-01-15T00:00:00Z'), t('2026-04-01T00:00:00Z')))).toEqual(['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z']);
    expect(backfillDates(daily, t('2026-01-01T01:00:00Z'), t('2026-01-01T02:00:00Z'))).toEqual([]);
  });

  it('refuses a DAG without a schedule, a range backwards, and a range too long', () => {
    expect(() => backfillDates({ dagId: 'm', schedule: null }, 0, 1)).toThrow(/DAG 'm' has no schedule/);
    expect(() => backfillDates({ dagId: 'o', schedule: '@once' }, 0, 1)).toThrow(/has no schedule \(@once\)/);
    expect(() => backfillDates({ dagId: 'd', schedule: '@daily' }, t('2026-02-01T00:00:00Z'), t('2026-01-01T00:00:00Z'))).toThrow(/--to .* is before --from/);
    expect(() => backfillDates({ dagId: 'd', schedule: '* * * * *' }, t('2026-01-01T00:00:00Z'), t('2026-03-01T00:00:00Z'))).toThrow(new RegExp(`more than ${MAX_BACKFILL_DATES} runs`));
  });
});

describe('dateAction: the reprocess matrix', () => {
  const run = (state: RunRow['state']) => ({ runId: 'scheduled__x', state }) as RunRow;
  it.each([
    ['none', undefined, 'create'], ['failed', undefined, 'create'], ['completed', undefined, 'create'],
    ['none', 'success', 'skip'], ['failed', 'success', 'skip'], ['completed', 'success', 'clear'],
    ['none', 'failed', 'skip'], ['failed', 'failed', 'clear'], ['completed', 'failed', 'clear'],
    ['none', 'running', 'skip'], ['failed', 'running', 'skip'], ['completed', 'running', 'skip'],
    ['completed', 'queued', 'skip'],
  ] as const)('--reprocess %s, existing run %s: %s', (mode, state, action) => {
    const got = dateAction(t('2026-01-01T00:00:00Z'), state === undefined ? undefined : run(state), mode);
    expect(got.action).toBe(action);
    expect(got.runId).toBe(state === undefined ? backfillRunId(t('2026-01-01T00:00:00Z')) : 'scheduled__x');
  });
});

describe('advanceBackfill with two drivers on one cursor', () => {
  it('never makes more runs than the limit: a run the other driver just made takes a slot', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createStore } = await import('../../src/store/index.js');
    const { dag } = await import('../../src/dag/authoring.js');
    const { serializeDag } = await import('../../src/dag/serialize.js');
    const { advanceBackfill } = await import('../../src/scheduler/backfill.js');
    const store = await createStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kiln-bf-')), 'kiln.db')}`);
    try {
      await store.migrate();
      const serialized = serializeDag(dag({ id: 'd', schedule: '@daily' }, (d) => void d.task('t', () => 1)));
      await store.upsertDag({ dagId: 'd', file: '/dev/null', version: 'v1', serialized });
      const dates = ['01', '02', '03', '04'].map((day) => t(`2026-01-${day}T00:00:00Z`));
      const row = { id: 'bf', dagId: 'd', fromDate: dates[0]!, toDate: dates[3]!, reprocess: 'none' as const, maxActiveRuns: 2, backwards: false, params: {}, dates, cursor: 0, driver: null, state: 'running' as const, createdAt: 0 };
      await store.createBackfill(row);
      const version = { dagVersion: 'v1', serialized };
      expect((await advanceBackfill(store, row, version, null, 1)).started.map((s) => s.runId)).toEqual([backfillRunId(dates[0]!), backfillRunId(dates[1]!)]);
      await store.write({ runs: [{ dagId: 'd', runId: backfillRunId(dates[0]!), expectStates: ['queued'], set: { state: 'success', endedAt: 2 } }] });
      // Both drivers read the backfill at cursor 2; A makes the third run first.
      const atTwo = (await store.getBackfill('bf'))!;
      expect(atTwo.cursor).toBe(2);
      const a = await advanceBackfill(store, atTwo, version, null, 3);
      expect(a.started.map((s) => s.runId)).toEqual([backfillRunId(dates[2]!)]);
      const b = await advanceBackfill(store, atTwo, version, null, 4);
      expect(b.started).toEqual([]);
      expect(b.lost).toBe(true);
      const active = (await store.listRuns({ dagId: 'd', states: ['queued', 'running'] })).map((r) => r.runId).sort();
      expect(active).toEqual([backfillRunId(dates[1]!), backfillRunId(dates[2]!)]);
    } finally {
      await store.close();
    }
  });
});
