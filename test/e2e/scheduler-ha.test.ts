/**
 * Two schedulers on one PostgreSQL database share 40 runs: claimRuns (FOR UPDATE SKIP
 * LOCKED) hands each run to exactly one live scheduler, so no task instance runs twice.
 * Skipped with a notice when PostgreSQL is unreachable, unless CI is set (then it fails).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runKiln, scratchProject } from '../helpers/cli.js';
import { createTestSchema, postgresTestUrl, type TestSchema } from '../helpers/postgres.js';
import { exitOf, FIXTURES, readRecords, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const RUNS = 40;
const TASKS = 5;
const pgUrl = await postgresTestUrl('scheduler HA (two schedulers on PostgreSQL)');
let schema: TestSchema | undefined;
afterAll(async () => schema?.drop());

describe('two schedulers on PostgreSQL', () => {
  it.skipIf(pgUrl === null)(`complete ${RUNS} runs between them with no task instance executed twice`, async () => {
    schema = await createTestSchema(pgUrl!, 'kiln_sched_ha');
    const cwd = scratchProject('kiln-sched-ha-');
    const sideFile = join(cwd, 'executions.jsonl');
    const env = { KILN_DATABASE_URL: schema.url, KILN_DAGS_FOLDER: join(FIXTURES, 'recorded'), KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
    const migrate = await runKiln(['db', 'migrate'], { cwd, env });
    expect(migrate.code, migrate.stderr).toBe(0);

    // One of each executor; both up before the runs exist, so both compete for them.
    const schedulers = (['thread', 'process'] as const).map((executor) => startScheduler(['--executor', executor, '--takeover-after', '10s'], { cwd, env }));
    try {
      await until(() => schedulers.every((p) => /scheduler \S+ started/.test(p.output())), 'both schedulers to start');
      const trigger = await runKiln(['dags', 'trigger', 'recorded', '--count', String(RUNS), '--params', JSON.stringify({ sideFile, sleepMs: 100 })], { cwd, env });
      expect(trigger.code, trigger.stderr).toBe(0);
      await withStore(schema.url, (store) =>
        until(async () => {
          const runs = await store.listRuns({ dagId: 'recorded' });
          return runs.length === RUNS && runs.every((r) => r.state === 'success');
        }, `all ${RUNS} runs to succeed`, 120_000),
      );
    } finally {
      for (const p of schedulers) p.child.kill('SIGTERM');
    }
    for (const p of schedulers) expect((await exitOf(p)).code, p.output()).toBe(0);

    const starts = readRecords(sideFile).filter((r) => r.event === 'start');
    const perTi = new Map<string, number>();
    for (const r of starts) perTi.set(`${r.run}/${r.task}`, (perTi.get(`${r.run}/${r.task}`) ?? 0) + 1);
    expect(perTi.size).toBe(RUNS * TASKS);
    expect([...perTi].filter(([, n]) => n !== 1)).toEqual([]);
    expect(starts.every((r) => r.try === 1)).toBe(true);
    // The work was shared: each scheduler (the task's own pid for threads, its parent for runner processes) ran some.
    const [threadScheduler, processScheduler] = schedulers.map((p) => p.pid);
    const byThread = starts.filter((r) => r.pid === threadScheduler).length;
    const byProcess = starts.filter((r) => r.ppid === processScheduler).length;
    expect(byThread + byProcess).toBe(starts.length);
    expect(byThread, 'tasks run by the thread scheduler').toBeGreaterThan(0);
    expect(byProcess, 'tasks run by the process scheduler').toBeGreaterThan(0);
    await withStore(schema.url, async (store) => {
      for (const run of await store.listRuns({ dagId: 'recorded' })) {
        expect((await store.getTaskInstances('recorded', run.runId)).every((t) => t.state === 'success' && t.tryNumber === 1)).toBe(true);
      }
      // A clean shutdown released every claim of an active run (none is left active here).
      expect(await store.listRuns({ states: ['queued', 'running'] })).toEqual([]);
    });
  }, 180_000);
});
