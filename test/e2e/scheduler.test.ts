/**
 * `kiln scheduler` end to end, as a user runs it: runs triggered from another process
 * (`kiln dags trigger`), then the scheduler finishes them all and exits when idle.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { FIXTURES, readRecords, withStore } from '../fixtures/scheduler/harness.js';

const EXAMPLES = join(REPO, 'examples/dags');

describe('kiln scheduler', () => {
  describe.each(['thread', 'process'] as const)('with the %s executor', (executor) => {
    it('finishes 40 runs of example_dag triggered beforehand, then exits when idle', async () => {
      const cwd = scratchProject('kiln-sched-');
      const env = { KILN_DAGS_FOLDER: EXAMPLES, KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '200ms' };
      // One trigger command queues all 40 (--count); each run gets its own manual__<time> id.
      const trigger = await runKiln(['dags', 'trigger', 'example_dag', '--count', '40', '--json'], { cwd, env });
      expect(trigger.code, trigger.stderr).toBe(0);
      const runIds = (JSON.parse(trigger.stdout) as { runs: Array<{ runId: string }> }).runs.map((r) => r.runId);
      expect(new Set(runIds).size).toBe(40);

      const scheduler = await runKiln(['scheduler', '--exit-when-idle', '--executor', executor], { cwd, env, timeoutMs: 120_000 });
      expect(scheduler.code, scheduler.stderr).toBe(0);

      const list = await runKiln(['runs', 'list', 'example_dag', '--json'], { cwd, env });
      const runs = (JSON.parse(list.stdout) as { runs: Array<{ runId: string; state: string; claimedBy: string | null }> }).runs;
      expect(runs.map((r) => r.runId).sort()).toEqual([...runIds].sort());
      expect(runs.filter((r) => r.state !== 'success')).toEqual([]);
      await withStore(`sqlite:${join(cwd, '.kiln/kiln.db')}`, async (store) => {
        for (const runId of runIds) {
          const tis = await store.getTaskInstances('example_dag', runId);
          expect(tis).toHaveLength(12);
          expect(tis.filter((t) => t.state !== 'success' || t.tryNumber !== 1 || t.isolation !== executor)).toEqual([]);
        }
        // A clean exit releases every claim.
        expect((await store.listRuns({ states: ['queued', 'running'] })).length).toBe(0);
      });
    });
  });

  it('keeps maxActiveRuns per DAG (runs beyond it wait, queued) and maxActiveTasks per run', async () => {
    const cwd = scratchProject('kiln-sched-');
    const sideFile = join(cwd, 'executions.jsonl');
    const env = { KILN_DAGS_FOLDER: join(FIXTURES, 'limits'), KILN_PARALLELISM: '8', KILN_SCHEDULER_INTERVAL: '100ms' };
    const trigger = await runKiln(['dags', 'trigger', 'limited', '--count', '6', '--params', JSON.stringify({ sideFile })], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const res = await runKiln(['scheduler', '--exit-when-idle', '--executor', 'thread'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    // Replay the side file: how many runs, and how many tasks of one run, were active at once.
    const events = readRecords<{ run: string; task: string; event: 'start' | 'end' }>(sideFile);
    expect(events).toHaveLength(6 * 3 * 2);
    const perRun = new Map<string, number>();
    const left = new Map<string, number>();
    let peakRuns = 0;
    let peakTasksInRun = 0;
    for (const e of events) {
      const n = (perRun.get(e.run) ?? 0) + (e.event === 'start' ? 1 : -1);
      perRun.set(e.run, n);
      peakTasksInRun = Math.max(peakTasksInRun, n);
      // A run is active from its first task's start to its last task's end.
      if (e.event === 'start' && !left.has(e.run)) left.set(e.run, 3);
      if (e.event === 'end') left.set(e.run, left.get(e.run)! - 1);
      peakRuns = Math.max(peakRuns, [...left.values()].filter((x) => x > 0).length);
    }
    expect(peakTasksInRun).toBe(1);
    expect(peakRuns).toBe(2);
    expect(res.stderr).toMatch(/waits: DAG limited has maxActiveRuns \(2\) runs running/);
  });

  it('creates scheduled runs for the ended intervals since startDate: all with catchup, the latest without', async () => {
    const cwd = scratchProject('kiln-sched-');
    const env = { KILN_DAGS_FOLDER: join(FIXTURES, 'catchup'), KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
    const res = await runKiln(['scheduler', '--exit-when-idle', '--executor', 'thread'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    const HOUR = 3_600_000;
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    await withStore(`sqlite:${join(cwd, '.kiln/kiln.db')}`, async (store) => {
      const scheduled = async (dagId: string) => (await store.listRuns({ dagId })).filter((r) => r.runType === 'scheduled').sort((a, b) => a.logicalDate - b.logicalDate);
      const catchup = await scheduled('hourly_catchup');
      // (`hour` is read after the scheduler ran: if an hour began meanwhile, one more run is right.)
      const first = hour - (catchup.length === 4 ? 4 : 3) * HOUR;
      expect(catchup.map((r) => r.logicalDate)).toEqual(catchup.map((_, i) => first + i * HOUR));
      // Each scheduled run covers [t, next(t)).
      expect(catchup.map((r) => [r.dataIntervalStart, r.dataIntervalEnd])).toEqual(catchup.map((r) => [r.logicalDate, r.logicalDate + HOUR]));
      expect(catchup.length === 3 || catchup.length === 4).toBe(true);
      expect(catchup.map((r) => r.runId)[0]).toBe(`scheduled__${new Date(first).toISOString()}`);
      expect(catchup.every((r) => r.state === 'success')).toBe(true);
      const latest = await scheduled('hourly_latest');
      expect(latest.map((r) => r.logicalDate)).toEqual([catchup[catchup.length - 1]!.logicalDate]);
      // The cursor waits for the end of the current interval; @once in the future created nothing.
      expect((await store.getDag('hourly_catchup'))!.nextRunAt).toBe(catchup[catchup.length - 1]!.logicalDate + HOUR);
      expect(await store.listRuns({ dagId: 'once_future' })).toEqual([]);
    });
    // A second pass creates nothing new: the cursors moved by compare-and-set.
    const again = await runKiln(['scheduler', '--exit-when-idle', '--executor', 'thread'], { cwd, env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/created run/);
  });
});
