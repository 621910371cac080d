/**
 * Data intervals as a user meets them: stored with the run when it is created, handed to
 * the task as Dates, shown by dags test, runs show and runs list, never recomputed.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { databasesUnderTest } from '../helpers/databases.js';

const databases = await databasesUnderTest('data_intervals');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

interface Where { runType: string; logicalDate: string; start: string; end: string; prevStart: string | null; prevEnd: string | null; dates: boolean }

describe.each(databases)('data intervals on $name', (db) => {
  describe.each(['thread', 'process'] as const)('executor %s', (executor) => {
    const project = () => {
      const cwd = scratchProject('kiln-intervals-');
      mkdirSync(join(cwd, 'dags'));
      copyFileSync(join(REPO, 'test/fixtures/intervals/daily.ts'), join(cwd, 'dags/daily.ts'));
      return cwd;
    };
    const kiln = (cwd: string, args: string[]) => runKiln(args, { cwd, env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '2' } });
    const test = async (cwd: string, logicalDate: string, params: object = {}) => {
      const res = await kiln(cwd, ['dags', 'test', 'daily', '--executor', executor, '--logical-date', logicalDate, '--params', JSON.stringify(params), '--json']);
      return { res, report: JSON.parse(res.stdout) as { runId: string; runType: string; logicalDate: string; dataIntervalStart: string; dataIntervalEnd: string; state: string } };
    };
    const xcom = async (cwd: string, runId: string): Promise<Where> => {
      const store = await createStore(db.url(cwd));
      try {
        return (await store.getXcom({ dagId: 'daily', runId, taskId: 'where' })) as Where;
      } finally {
        await store.close();
      }
    };

    it('hands the task its interval and the previous successful one, skipping failed runs', async () => {
      const cwd = project();
      const first = await test(cwd, '2026-11-20T01:00:00Z');
      expect(first.res.code, first.res.stderr).toBe(0);
      expect(first.report).toMatchObject({ runType: 'manual', logicalDate: '2026-11-20T01:00:00.000Z', dataIntervalStart: '2026-11-19T00:00:00.000Z', dataIntervalEnd: '2026-11-20T00:00:00.000Z' });
      expect(await xcom(cwd, first.report.runId)).toEqual({
        runType: 'manual', logicalDate: '2026-11-20T01:00:00.000Z', start: '2026-11-19T00:00:00.000Z', end: '2026-11-20T00:00:00.000Z', prevStart: null, prevEnd: null, dates: true,
      });
      const failed = await test(cwd, '2026-11-21', { fail: true });
      expect(failed.res.code).toBe(1);
      const third = await test(cwd, '2026-11-22T12:00:00Z');
      expect(third.res.code, third.res.stderr).toBe(0);
      const where = await xcom(cwd, third.report.runId);
      expect([where.start, where.end]).toEqual(['2026-11-21T00:00:00.000Z', '2026-11-22T00:00:00.000Z']);
      // The failed run of the 21st is skipped: the previous success is the run of the 20th.
      expect([where.prevStart, where.prevEnd]).toEqual(['2026-11-19T00:00:00.000Z', '2026-11-20T00:00:00.000Z']);
    });

    it('keeps a run\'s interval when the DAG\'s schedule changes, and shows it in runs show and runs list', async () => {
      const cwd = project();
      const daily = await test(cwd, '2026-11-25T01:00:00Z');
      expect(daily.res.code, daily.res.stderr).toBe(0);
      const file = join(cwd, 'dags/daily.ts');
      writeFileSync(file, readFileSync(file, 'utf8').replace("schedule: '@daily'", "schedule: '@hourly'"));
      const hourly = await test(cwd, '2026-11-25T01:30:00Z');
      expect(hourly.res.code, hourly.res.stderr).toBe(0);
      expect([hourly.report.dataIntervalStart, hourly.report.dataIntervalEnd]).toEqual(['2026-11-25T00:00:00.000Z', '2026-11-25T01:00:00.000Z']);
      const show = await kiln(cwd, ['runs', 'show', 'daily', daily.report.runId, '--json']);
      const { run } = JSON.parse(show.stdout) as { run: { dataIntervalStart: number; dataIntervalEnd: number; logicalDate: number; runType: string } };
      expect(run).toMatchObject({ runType: 'manual', dataIntervalStart: Date.parse('2026-11-24T00:00:00Z'), dataIntervalEnd: Date.parse('2026-11-25T00:00:00Z') });
      const text = await kiln(cwd, ['runs', 'show', 'daily', daily.report.runId]);
      expect(text.stdout).toContain('data interval 2026-11-24T00:00:00.000Z to 2026-11-25T00:00:00.000Z');
      const list = await kiln(cwd, ['runs', 'list', 'daily', '--json']);
      const runs = (JSON.parse(list.stdout) as { runs: Array<{ runId: string; dataIntervalStart: number }> }).runs;
      expect(runs.find((r) => r.runId === daily.report.runId)?.dataIntervalStart).toBe(Date.parse('2026-11-24T00:00:00Z'));
    });
  });

  it('triggers with --logical-date, refuses a second run at that date and a bad date', async () => {
    const cwd = scratchProject('kiln-intervals-');
    const env = { KILN_DATABASE_URL: db.url(cwd), KILN_DAGS_FOLDER: join(REPO, 'test/fixtures/intervals') };
    const res = await runKiln(['dags', 'trigger', 'daily', '--logical-date', '2026-11-25T00:00:00Z', '--json'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).runs[0]).toMatchObject({ runId: 'manual__2026-11-25T00:00:00.000Z', runType: 'manual', dataIntervalStart: '2026-11-24T00:00:00.000Z', dataIntervalEnd: '2026-11-25T00:00:00.000Z' });
    const again = await runKiln(['dags', 'trigger', 'daily', '--logical-date', '2026-11-25'], { cwd, env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/run 'manual__2026-11-25T00:00:00.000Z' of DAG 'daily' already exists/);
    const bad = await runKiln(['dags', 'trigger', 'daily', '--logical-date', 'yesterday'], { cwd, env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--logical-date must be an ISO 8601 date/);
  });
});
