/**
 * `kiln backfill` as a user runs it: the dates, the reprocess matrix, the active-run limit,
 * the order, bad params, and (with --queue) two schedulers on PostgreSQL sharing the work.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunRow } from '../../src/store/types.js';
import { initialTaskInstances } from '../../src/scheduler/run-state.js';
import { databasesUnderTest } from '../helpers/databases.js';
import { CLI, REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, readRecords, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const DAGS = join(REPO, 'test/fixtures/backfill');
const databases = await databasesUnderTest('backfill');
afterAll(async () => Promise.all(databases.map((d) => d.cleanup())));

interface Record {
  event: 'start' | 'end';
  runId: string;
  runType: string;
  day: string;
  start: string;
  end: string;
  at: number;
}
interface Report {
  backfillId: string | null;
  state: string;
  dates: Array<{ logicalDate: string; action: string; runId: string; state?: string; why?: string }>;
}

/** Most runs that were between their start and end records at one moment. */
function maxConcurrent(records: Record[]): number {
  let now = 0;
  let max = 0;
  for (const r of [...records].sort((a, b) => a.at - b.at || (a.event === 'end' ? -1 : 1))) {
    now += r.event === 'start' ? 1 : -1;
    max = Math.max(max, now);
  }
  return max;
}

describe.each(databases)('kiln backfill on $name', (db) => {
  const project = () => {
    const cwd = scratchProject('kiln-backfill-');
    const env = { KILN_DATABASE_URL: db.url(cwd), KILN_DAGS_FOLDER: DAGS, KILN_PARALLELISM: '8' };
    return { cwd, env, side: join(cwd, 'side.jsonl') };
  };

  it('--dry-run prints the dates (newest first with --backwards) and changes nothing', async () => {
    const { cwd, env, side } = project();
    const res = await runKiln(['backfill', 'bf_daily', '--from', '2026-01-01', '--to', '2026-01-04T12:00:00Z', '--dry-run', '--backwards', '--json', '--params', JSON.stringify({ sideFile: side })], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as Report;
    expect(report.dates.map((d) => [d.logicalDate, d.action, d.runId])).toEqual(['04', '03', '02', '01'].map((day) => [`2026-01-${day}T00:00:00.000Z`, 'create', `backfill__2026-01-${day}T00:00:00.000Z`]));
    expect(report.backfillId).toBeNull();
    const list = await runKiln(['runs', 'list', 'bf_daily', '--json'], { cwd, env });
    expect(JSON.parse(list.stdout).runs).toEqual([]);
    expect(existsSync(side)).toBe(false);
  });

  it.each(['none', 'failed', 'completed'] as const)('--reprocess %s: a finished run is skipped or cleared as asked, a running one is never touched', async (mode) => {
    const { cwd, env, side } = project();
    // The DAG in the database, then runs at three dates: one that succeeded, one that failed, one still running.
    expect((await runKiln(['db', 'migrate'], { cwd, env })).code).toBe(0);
    expect((await runKiln(['dags', 'list'], { cwd, env })).code).toBe(0);
    const day = (n: number) => Date.parse(`2026-01-0${n}T00:00:00Z`);
    await withStore(db.url(cwd), async (store) => {
      const dag = (await store.getDag('bf_daily'))!;
      for (const [n, state] of [[1, 'success'], [2, 'failed'], [3, 'running']] as const) {
        const row: RunRow = { dagId: 'bf_daily', runId: `scheduled__2026-01-0${n}`, runType: 'scheduled', logicalDate: day(n), dataIntervalStart: day(n), dataIntervalEnd: day(n + 1), state, params: { sideFile: side, sleepMs: 10, failOn: [] }, dagVersion: dag.version, queuedAt: day(n), startedAt: day(n), endedAt: state === 'running' ? null : day(n) + 1000, claimedBy: null };
        const tis = initialTaskInstances('bf_daily', row.runId, dag.serialized.tasks).map((t) => ({ ...t, state: state === 'running' ? ('running' as const) : state, tryNumber: 1 }));
        expect(await store.createRun(row, tis)).toBe(true);
      }
    });
    const res = await runKiln(['backfill', 'bf_daily', '--from', '2026-01-01', '--to', '2026-01-04', '--reprocess', mode, '--json', '--params', JSON.stringify({ sideFile: side, sleepMs: 10 })], { cwd, env, timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    const actions = Object.fromEntries((JSON.parse(res.stdout) as Report).dates.map((d) => [d.logicalDate.slice(0, 10), `${d.action} ${d.runId}`]));
    const expected = {
      none: { '2026-01-01': 'skip scheduled__2026-01-01', '2026-01-02': 'skip scheduled__2026-01-02' },
      failed: { '2026-01-01': 'skip scheduled__2026-01-01', '2026-01-02': 'clear scheduled__2026-01-02' },
      completed: { '2026-01-01': 'clear scheduled__2026-01-01', '2026-01-02': 'clear scheduled__2026-01-02' },
    }[mode];
    expect(actions).toEqual({ ...expected, '2026-01-03': 'skip scheduled__2026-01-03', '2026-01-04': 'create backfill__2026-01-04T00:00:00.000Z' });
    await withStore(db.url(cwd), async (store) => {
      // One run per logical date: nothing new where a run was.
      expect((await store.listRuns({ dagId: 'bf_daily' })).map((r) => r.runId).sort()).toEqual(['backfill__2026-01-04T00:00:00.000Z', 'scheduled__2026-01-01', 'scheduled__2026-01-02', 'scheduled__2026-01-03']);
      const running = await store.getRun('bf_daily', 'scheduled__2026-01-03');
      expect(running?.state).toBe('running');
      expect((await store.getTaskInstances('bf_daily', 'scheduled__2026-01-03'))[0]).toMatchObject({ state: 'running', tryNumber: 1 });
      for (const n of [1, 2]) {
        const cleared = expected[`2026-01-0${n}` as keyof typeof expected].startsWith('clear');
        const [ti] = await store.getTaskInstances('bf_daily', `scheduled__2026-01-0${n}`);
        // Cleared: ran again with a new try number (try 1 is kept in the try count); else untouched.
        expect(ti).toMatchObject(cleared ? { state: 'success', tryNumber: 2 } : { state: n === 1 ? 'success' : 'failed', tryNumber: 1 });
        expect((await store.getRun('bf_daily', `scheduled__2026-01-0${n}`))?.runType).toBe('scheduled');
      }
    });
    const ran = readRecords<Record>(side).filter((r) => r.event === 'start').map((r) => r.day).sort();
    expect(ran).toEqual([...(mode === 'completed' ? ['2026-01-01'] : []), ...(mode === 'none' ? [] : ['2026-01-02']), '2026-01-04']);
  });

  it('drives the runs in this process, never more than --max-active-runs at once, oldest first; a failed date makes it exit 1', async () => {
    const { cwd, env, side } = project();
    const res = await runKiln(['backfill', 'bf_daily', '--from', '2026-02-01', '--to', '2026-02-06', '--max-active-runs', '2', '--json', '--params', JSON.stringify({ sideFile: side, sleepMs: 300, failOn: ['2026-02-03'] })], { cwd, env, timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(1);
    const report = JSON.parse(res.stdout) as Report;
    expect(report.state).toBe('failed');
    expect(report.dates.map((d) => d.state)).toEqual(['success', 'success', 'failed', 'success', 'success', 'success']);
    const records = readRecords<Record>(side);
    expect(maxConcurrent(records)).toBe(2);
    const starts = records.filter((r) => r.event === 'start');
    expect(starts.map((r) => r.day).slice(0, 2).sort()).toEqual(['2026-02-01', '2026-02-02']);
    // Backfill runs cover the scheduled interval of their date.
    expect(starts.every((r) => r.runType === 'backfill' && r.start.slice(0, 10) === r.day && Date.parse(r.end) - Date.parse(r.start) === 86_400_000)).toBe(true);
    await withStore(db.url(cwd), async (store) => {
      const dag = await store.getDag('bf_daily');
      expect(dag?.nextRunAt ?? null).toBeNull(); // the schedule cursor is the scheduler's: untouched
    });
  });

  it('--backwards runs the newest date first', async () => {
    const { cwd, env, side } = project();
    const res = await runKiln(['backfill', 'bf_daily', '--from', '2026-03-01', '--to', '2026-03-04', '--max-active-runs', '1', '--backwards', '--params', JSON.stringify({ sideFile: side, sleepMs: 10 })], { cwd, env, timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(readRecords<Record>(side).filter((r) => r.event === 'start').map((r) => r.day)).toEqual(['2026-03-04', '2026-03-03', '2026-03-02', '2026-03-01']);
  });

  it('refuses bad --params with the path of the violation, before anything is made', async () => {
    const { cwd, env } = project();
    const res = await runKiln(['backfill', 'bf_daily', '--from', '2026-01-01', '--to', '2026-01-02', '--params', JSON.stringify({ sleepMs: 99_999, failOn: 'monday' })], { cwd, env });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/params\.failOn: must be array/);
    expect(res.stderr).toMatch(/params\.sleepMs: must be <= 10000/);
    await withStore(db.url(cwd), async (store) => expect(await store.listRuns({ dagId: 'bf_daily' })).toEqual([]));
    const noSchedule = await runKiln(['backfill', 'no_schedule', '--from', '2026-01-01', '--to', '2026-01-02'], { cwd, env });
    expect(noSchedule.code).toBe(2);
    expect(noSchedule.stderr).toMatch(/has no schedule/);
  });

  it('a backfill whose process was SIGKILLed is driven on by a scheduler', async () => {
    const { cwd, env, side } = project();
    const child = spawn(process.execPath, [CLI, 'backfill', 'bf_daily', '--from', '2026-05-01', '--to', '2026-05-03', '--max-active-runs', '1', '--executor', 'process', '--params', JSON.stringify({ sideFile: side, sleepMs: 1500 })], {
      cwd, env: { ...process.env, ...env, CI: 'true' }, stdio: 'ignore',
    });
    await until(() => readRecords<Record>(side).some((r) => r.event === 'start'), 'the first run to start', 30_000);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const scheduler = startScheduler(['--exit-when-idle', '--executor', 'thread', '--takeover-after', '1s'], { cwd, env: { ...env, KILN_SCHEDULER_INTERVAL: '100ms' } });
    expect((await exitOf(scheduler, 60_000)).code, scheduler.output()).toBe(0);
    expect(scheduler.output()).toMatch(/its `kiln backfill` process stopped answering; the schedulers drive it on/);
    await withStore(db.url(cwd), async (store) => {
      const runs = (await store.listRuns({ dagId: 'bf_daily' })).filter((r) => r.runType === 'backfill');
      expect(runs.map((r) => [r.logicalDate, r.state]).sort()).toEqual(['01', '02', '03'].map((d) => [Date.parse(`2026-05-${d}T00:00:00Z`), 'success']));
    });
  });

  it('--queue leaves the backfill to the schedulers; two of them make each run once and keep the limit', async () => {
    const { cwd, env, side } = project();
    const queued = await runKiln(['backfill', 'bf_daily', '--from', '2026-04-01', '--to', '2026-04-08', '--max-active-runs', '2', '--queue', '--json', '--params', JSON.stringify({ sideFile: side, sleepMs: 200 })], { cwd, env });
    expect(queued.code, queued.stderr).toBe(0);
    expect((JSON.parse(queued.stdout) as Report).backfillId).toMatch(/^backfill__bf_daily__/);
    const schedulers = [0, 1].map(() => startScheduler(['--exit-when-idle', '--executor', 'thread'], { cwd, env: { ...env, KILN_SCHEDULER_INTERVAL: '100ms' } }));
    for (const s of schedulers) expect((await exitOf(s, 90_000)).code, s.output()).toBe(0);
    const records = readRecords<Record>(side);
    expect(records.filter((r) => r.event === 'start').map((r) => r.day).sort()).toEqual(['01', '02', '03', '04', '05', '06', '07', '08'].map((d) => `2026-04-${d}`));
    expect(maxConcurrent(records)).toBeLessThanOrEqual(2);
    await withStore(db.url(cwd), async (store) => {
      // (The schedulers also made the DAG's own latest scheduled run: catchup is off.)
      const runs = (await store.listRuns({ dagId: 'bf_daily' })).filter((r) => r.runType === 'backfill');
      expect(runs).toHaveLength(8);
      expect(runs.every((r) => r.state === 'success')).toBe(true);
    });
  });
});
