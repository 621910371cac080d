/**
 * `kiln dags test` end to end, as a user runs it: the built CLI, real DAG files, every
 * runtime, both databases.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { TRIGGER_RULE_CASES, downstreamId } from '../fixtures/dags/_trigger_rule_cases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { databasesUnderTest } from '../helpers/databases.js';

const DAGS = join(REPO, 'test/fixtures/dags');
const EXAMPLES = join(REPO, 'examples/dags');

interface Report {
  dagId: string;
  runId: string;
  state: string;
  durationMs: number;
  tasks: Array<{ taskId: string; state: string; tries: number; isolation: string | null; exitCode: number | null; error: string | null; durationMs: number | null }>;
}

const databases = await databasesUnderTest('dags_test');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

describe.each(databases)('dags test on $name', (db) => {
  describe.each(['thread', 'process', 'spawn'] as const)('executor %s', (executor) => {
    const kiln = (args: string[], cwd = scratchProject()) =>
      runKiln([...args, '--executor', executor, '--json'], { cwd, env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '4' } });

    it('runs the etl example to success, passing values through XCom', async () => {
      const cwd = scratchProject();
      const res = await kiln(['dags', 'test', join(EXAMPLES, 'etl.ts')], cwd);
      expect(res.code, res.stderr).toBe(0);
      const report = JSON.parse(res.stdout) as Report;
      expect(report).toMatchObject({ dagId: 'etl', state: 'success' });
      expect(report.runId).toMatch(/^manual__/);
      expect(report.tasks.map((t) => [t.taskId, t.state, t.tries, t.isolation])).toEqual([
        ['extract', 'success', 1, executor],
        ['double', 'success', 1, executor],
        ['total', 'success', 1, executor],
        ['report', 'success', 1, executor],
      ]);
      const store = await createStore(db.url(cwd));
      try {
        expect(await store.getXcom({ dagId: 'etl', runId: report.runId, taskId: 'double' })).toEqual([2, 4, 6]);
        expect(await store.getXcom({ dagId: 'etl', runId: report.runId, taskId: 'report' })).toEqual({ sum: 12 });
        const run = await store.getRun('etl', report.runId);
        expect(run?.state).toBe('success');
      } finally {
        await store.close();
      }
    });

    it('retries a failing task until it succeeds, and fail() ends it with no retry', async () => {
      const cwd = scratchProject();
      const res = await kiln(['dags', 'test', join(DAGS, 'retries.ts')], cwd);
      expect(res.code).toBe(1);
      const report = JSON.parse(res.stdout) as Report;
      const byId = Object.fromEntries(report.tasks.map((t) => [t.taskId, t]));
      expect(report.state).toBe('failed');
      expect(byId.third_time_lucky).toMatchObject({ state: 'success', tries: 3 });
      expect(byId.never).toMatchObject({ state: 'failed', tries: 2 });
      expect(byId.never!.error).toMatch(/always fails/);
      expect(byId.no_retry).toMatchObject({ state: 'failed', tries: 1 });
      expect(byId.no_retry!.error).toMatch(/bad input/);
      // Every failed try explains itself in its log, even one that printed nothing.
      const logs = await runKiln(['tasks', 'logs', 'retries', report.runId, 'never', '--try', '1'], { cwd, env: { KILN_DATABASE_URL: db.url(cwd) } });
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toMatch(/try failed \(TASK_FAILED\).*always fails/);
    });

    it('passes --params over the DAG params', async () => {
      const cwd = scratchProject();
      const res = await kiln(['dags', 'test', join(DAGS, 'xcom_and_params.mjs'), '--params', '{"factor":10}', '--run-id', 'by_hand'], cwd);
      expect(res.code, res.stderr).toBe(0);
      const store = await createStore(db.url(cwd));
      try {
        expect(await store.getXcom({ dagId: 'xcom_and_params', runId: 'by_hand', taskId: 'scaled' })).toEqual([10, 20, 30]);
      } finally {
        await store.close();
      }
    });
  });

  // Every trigger rule as a real run (cases from Airflow's test table). Spawn would only
  // repeat the same engine decisions at 100 ms a task, so it runs on the two pools.
  describe.each(['thread', 'process'] as const)('trigger rules with executor %s', (executor) => {
    it('ends every case in the state Airflow would', async () => {
      const cwd = scratchProject();
      const res = await runKiln(['dags', 'test', join(DAGS, 'trigger_rule_matrix.ts'), '--executor', executor, '--json'], {
        cwd,
        env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '8' },
      });
      const report = JSON.parse(res.stdout) as Report;
      const states = Object.fromEntries(report.tasks.map((t) => [t.taskId, t.state]));
      const got = TRIGGER_RULE_CASES.map((c, i) => `${c.rule} [${c.upstream.join(',')}] -> ${states[downstreamId(i)]}`);
      const want = TRIGGER_RULE_CASES.map((c) => `${c.rule} [${c.upstream.join(',')}] -> ${c.expect}`);
      expect(got).toEqual(want);
      // Tasks that did not run were never tried.
      for (const [i, c] of TRIGGER_RULE_CASES.entries()) {
        const t = report.tasks.find((x) => x.taskId === downstreamId(i))!;
        expect(t.tries).toBe(c.expect === 'success' ? 1 : 0);
      }
    });
  });
});

describe('a third-party executor', () => {
  it('runs a whole DAG when named by module path, exactly as a built-in is', async () => {
    const cwd = scratchProject();
    const plugin = join(REPO, 'test/fixtures/executor/third-party-executor.mjs');
    const res = await runKiln(['dags', 'test', join(EXAMPLES, 'etl.ts'), '--executor', plugin, '--json'], { cwd });
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as Report;
    expect(report.state).toBe('success');
    // The plugin runs tasks inline in kiln's process and prefers the 'thread' isolation label.
    expect(report.tasks.map((t) => [t.taskId, t.state, t.isolation])).toEqual([
      ['extract', 'success', 'thread'],
      ['double', 'success', 'thread'],
      ['total', 'success', 'thread'],
      ['report', 'success', 'thread'],
    ]);
  });

  it('is refused with a clear error when the module exports no factory', async () => {
    const cwd = scratchProject();
    const res = await runKiln(['dags', 'test', join(EXAMPLES, 'etl.ts'), '--executor', join(REPO, 'test/fixtures/dags/xcom_and_params.mjs')], { cwd });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/has no ExecutorFactory default export/);
  });
});

describe('one executor, three isolations', () => {
  it('runs each task of one DAG where its isolation option says', async () => {
    const cwd = scratchProject();
    const res = await runKiln(['dags', 'test', join(DAGS, 'mixed_isolation.ts'), '--executor', 'local', '--json'], { cwd });
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as Report;
    expect(report.tasks.map((t) => [t.taskId, t.state, t.isolation])).toEqual([
      ['in_thread', 'success', 'thread'],
      ['in_process', 'success', 'process'],
      ['spawned', 'success', 'spawn'],
      ['gather', 'success', 'process'], // the config default
    ]);
    const store = await createStore(`sqlite:${join(cwd, '.kiln/kiln.db')}`);
    try {
      type Where = { pid: number; ppid: number; isMainThread: boolean };
      const seen = (await store.getXcom({ dagId: 'mixed_isolation', runId: report.runId, taskId: 'gather' })) as Record<'thread' | 'process' | 'spawn', Where>;
      const kilnPid = seen.process.ppid; // pooled processes are kiln's children
      expect(seen.thread).toMatchObject({ pid: kilnPid, isMainThread: false });
      expect(seen.process.pid).not.toBe(kilnPid);
      expect(seen.spawn.pid).not.toBe(kilnPid);
      expect(seen.spawn.pid).not.toBe(seen.process.pid);
      expect(seen.spawn.ppid).toBe(kilnPid);
    } finally {
      await store.close();
    }
  });
});
