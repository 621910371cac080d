/**
 * Three schedulers on one PostgreSQL database, each driving its share of the runs, keep the
 * limits exactly: a 2-slot pool never has more than 2 tries running, a run never more than its
 * maxActiveTasks, a DAG never more than its maxActiveRuns runs. The tasks record their start
 * and end in a side file; each recorded interval lies inside the time its try held the slot
 * (queued to finished), so the most intervals open at once is a lower bound of what the
 * limit allowed: it must be 2, never more.
 * Skipped with a notice when PostgreSQL is unreachable, unless CI is set (then it fails).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln, scratchProject } from '../helpers/cli.js';
import { createTestSchema, postgresTestUrl, type TestSchema } from '../helpers/postgres.js';
import { exitOf, FIXTURES, readRecords, startScheduler, until, withStore, type SchedulerProcess } from '../fixtures/scheduler/harness.js';

/** More runs than one scheduler claims at once (16), so all three drive some. */
const RUNS = 40;
const pgUrl = await postgresTestUrl('shared limits (three schedulers on PostgreSQL)');

interface Mark {
  run: string;
  task: string;
  event: 'start' | 'end';
  t: number;
}

/** The most intervals open at once; an end at the same instant as a start closes first. */
function peakOverlap(intervals: ReadonlyArray<readonly [number, number]>): number {
  const points = intervals.flatMap(([start, end]) => [[start, 1], [end, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let peak = 0;
  for (const [, delta] of points) {
    open += delta;
    peak = Math.max(peak, open);
  }
  return peak;
}

/** [start, end] of each key's records (one start and one end each). */
function intervalsBy(records: readonly Mark[], key: (r: Mark) => string): Array<[number, number]> {
  const spans = new Map<string, [number, number]>();
  for (const r of records) {
    const span = spans.get(key(r)) ?? [Infinity, -Infinity];
    if (r.event === 'start') span[0] = Math.min(span[0], r.t);
    else span[1] = Math.max(span[1], r.t);
    spans.set(key(r), span);
  }
  return [...spans.values()];
}

describe.skipIf(pgUrl === null)('three schedulers on one PostgreSQL database', () => {
  let schema: TestSchema | undefined;
  let cwd: string;
  let env: Record<string, string>;
  let schedulers: SchedulerProcess[] = [];

  beforeAll(async () => {
    schema = await createTestSchema(pgUrl!, 'kiln_shared_limits');
    cwd = scratchProject('kiln-shared-limits-');
    env = { KILN_DATABASE_URL: schema.url, KILN_DAGS_FOLDER: join(FIXTURES, 'shared-limits'), KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
    for (const args of [['db', 'migrate'], ['pools', 'set', 'duo', '2']]) {
      const res = await runKiln(args, { cwd, env });
      expect(res.code, res.stderr).toBe(0);
    }
    schedulers = (['thread', 'process', 'thread'] as const).map((executor) => startScheduler(['--executor', executor, '--takeover-after', '10s'], { cwd, env }));
    await until(() => schedulers.every((p) => /scheduler \S+ started/.test(p.output())), 'the three schedulers to start');
  }, 60_000);

  afterAll(async () => {
    for (const p of schedulers) p.child.kill('SIGTERM');
    try {
      for (const p of schedulers) expect((await exitOf(p)).code, p.output()).toBe(0);
    } finally {
      await schema?.drop();
    }
  }, 90_000);

  /** Triggers RUNS runs of the DAG and waits until all succeeded; returns the side file's records and who drove each run. */
  async function runAll(dagId: string, sleepMs: number): Promise<{ records: Mark[]; drivers: Set<string | null> }> {
    const sideFile = join(cwd, `${dagId}.jsonl`);
    const trigger = await runKiln(['dags', 'trigger', dagId, '--count', String(RUNS), '--params', JSON.stringify({ sideFile, sleepMs })], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const runs = await withStore(schema!.url, (store) =>
      until(async () => {
        const all = await store.listRuns({ dagId });
        return all.length === RUNS && all.every((r) => r.state === 'success') ? all : null;
      }, `all ${RUNS} runs of ${dagId} to succeed`, 120_000),
    );
    return { records: readRecords<Mark>(sideFile), drivers: new Set(runs.map((r) => r.claimedBy)) };
  }

  it('never runs more than 2 tries at once in a 2-slot pool, nor more than maxActiveTasks of a run', async () => {
    const { records, drivers } = await runAll('pool_heavy', 40);
    expect(records).toHaveLength(RUNS * 4 * 2);
    expect(drivers.size, 'schedulers that drove runs').toBeGreaterThan(1);
    expect(peakOverlap(intervalsBy(records, (r) => `${r.run}/${r.task}`)), 'tries running at once in pool duo').toBe(2);
    const perRun = new Map<string, Mark[]>();
    for (const r of records) perRun.set(r.run, [...(perRun.get(r.run) ?? []), r]);
    for (const [run, rs] of perRun) expect(peakOverlap(intervalsBy(rs, (r) => r.task)), `tries of ${run} at once`).toBeLessThanOrEqual(2);
  }, 150_000);

  it('never runs more than maxActiveRuns runs of a DAG at once', async () => {
    const { records, drivers } = await runAll('run_limited', 30);
    expect(records).toHaveLength(RUNS * 2 * 2);
    expect(drivers.size, 'schedulers that drove runs').toBeGreaterThan(1);
    // A run is active from its first task's start to its last task's end.
    expect(peakOverlap(intervalsBy(records, (r) => r.run)), 'runs of run_limited at once').toBe(2);
  }, 150_000);
});
