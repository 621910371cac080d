/**
 * Retention end to end, through the built CLI on every database under test: `kiln db clean`
 * (dry run, the real thing, bad input) and the scheduler cleaning on its own when `retention`
 * is set. Old runs are made by running a DAG with `dags test` and moving the run's end time
 * back in the database.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';
import type { Store } from '../../src/store/types.js';

const DAGS = join(REPO, 'test/fixtures/retention');
const DAG_FILE = join(DAGS, 'logged.ts');
const DAY = 86_400_000;

const databases = await databasesUnderTest('db_clean');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

function project(url: (dir: string) => string) {
  const cwd = scratchProject('kiln-db-clean-');
  const env: Record<string, string> = { KILN_DATABASE_URL: url(cwd), KILN_DAGS_FOLDER: DAGS, KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
  const kiln = async (...args: string[]) => {
    const res = await runKiln(args, { cwd, env });
    expect(res.code, `kiln ${args.join(' ')}: ${res.stderr}`).toBe(0);
    return res.stdout;
  };
  const logs = (runId: string) => join(cwd, '.kiln/logs/logged', runId);
  return { cwd, env, url: env.KILN_DATABASE_URL!, kiln, logs };
}

/** Moves a run's end time back (and sets its state), as if it had ended then. */
async function age(store: Store, runId: string, state: 'success' | 'queued' | 'running', endedAt: number): Promise<void> {
  const applied = await store.write({ runs: [{ dagId: 'logged', runId, expectStates: ['queued', 'running', 'success', 'failed'], set: { state, endedAt } }] });
  expect(applied.runs).toEqual([true]);
}

async function expectGone(store: Store, runId: string): Promise<void> {
  expect(await store.getRun('logged', runId)).toBeUndefined();
  expect(await store.getTaskInstances('logged', runId)).toEqual([]);
  for (const taskId of ['a', 'b', 'c']) expect(await store.getXcom({ dagId: 'logged', runId, taskId })).toBeUndefined();
}

describe.each(databases)('retention on $name', (db) => {
  it('kiln db clean: a dry run deletes nothing; then old finished runs go with their rows and logs, active and newer runs stay', async () => {
    const { url, kiln, logs } = project(db.url);
    for (const runId of ['old1', 'old2', 'new1']) await kiln('dags', 'test', DAG_FILE, '--executor', 'thread', '--run-id', runId, '--json');
    await kiln('dags', 'trigger', 'logged', '--run-id', 'waiting');
    await kiln('dags', 'trigger', 'logged', '--run-id', 'busy');
    const old = Date.now() - 40 * DAY;
    await withStore(url, async (store) => {
      await age(store, 'old1', 'success', old);
      await age(store, 'old2', 'success', old + 1000);
      // Queued and running runs are never touched, even with an old end time (as a run that
      // was cleared back to queued might carry).
      await age(store, 'waiting', 'queued', old);
      await age(store, 'busy', 'running', old);
    });
    for (const runId of ['old1', 'old2', 'new1']) expect(existsSync(join(logs(runId), 'a/1.log'))).toBe(true);

    const dry = JSON.parse(await kiln('db', 'clean', '--older-than', '30d', '--dry-run', '--json'));
    expect(dry).toEqual({ dryRun: true, endedBefore: expect.any(Number), runs: 2, taskInstances: 6, xcoms: 6, logFiles: 6, logBytes: expect.any(Number), logErrors: [] });
    expect(dry.logBytes).toBeGreaterThan(0);
    expect(Math.abs(dry.endedBefore - (Date.now() - 30 * DAY))).toBeLessThan(60_000);
    expect(await withStore(url, (store) => store.listRuns())).toHaveLength(5);
    expect(existsSync(logs('old1'))).toBe(true);

    const text = await kiln('db', 'clean', '--older-than', '30d');
    expect(text).toMatch(new RegExp(`^deleted 2 runs, 6 task instances, 6 XComs, 6 log files \\(${dry.logBytes} B\\) of runs that ended before \\S+Z\\n$`));
    await withStore(url, async (store) => {
      for (const runId of ['old1', 'old2']) await expectGone(store, runId);
      expect((await store.listRuns()).map((r) => r.runId).sort()).toEqual(['busy', 'new1', 'waiting']);
      expect(await store.getTaskInstances('logged', 'new1')).toHaveLength(3);
      expect(await store.getXcom({ dagId: 'logged', runId: 'new1', taskId: 'c' })).toEqual({ total: 2 });
      expect(await store.getTaskInstances('logged', 'busy')).toHaveLength(3);
    });
    expect(existsSync(logs('old1'))).toBe(false);
    expect(existsSync(logs('old2'))).toBe(false);
    expect(existsSync(join(logs('new1'), 'a/1.log'))).toBe(true);

    expect(JSON.parse(await kiln('db', 'clean', '--older-than', '30d', '--json'))).toMatchObject({ dryRun: false, runs: 0, taskInstances: 0, logFiles: 0 });
  });

  it('the scheduler with retention set cleans at start, and again on its own while it runs', async () => {
    const { cwd, env, url, kiln, logs } = project(db.url);
    for (const runId of ['old1', 'new1']) await kiln('dags', 'test', DAG_FILE, '--executor', 'thread', '--run-id', runId, '--json');
    await withStore(url, (store) => age(store, 'old1', 'success', Date.now() - 40 * DAY));

    // At start: a retention of 30 days deletes old1 only.
    const first = startScheduler(['--executor', 'thread', '--exit-when-idle'], { cwd, env: { ...env, KILN_RETENTION: '30d' } });
    expect((await exitOf(first)).code, first.output()).toBe(0);
    expect(first.output()).toMatch(/retention: deleted 1 run, 3 task instances, 3 XComs, 3 log files \(\d+ B\) of runs that ended before /);
    await withStore(url, async (store) => {
      await expectGone(store, 'old1');
      expect((await store.listRuns()).map((r) => r.runId)).toEqual(['new1']);
    });
    expect(existsSync(logs('old1'))).toBe(false);
    expect(existsSync(logs('new1'))).toBe(true);

    // Periodically: with a retention of 2 seconds, a run the scheduler just ran is gone a
    // few seconds after it ended, without a restart.
    const second = startScheduler(['--executor', 'thread'], { cwd, env: { ...env, KILN_RETENTION: '2s' } });
    try {
      await withStore(url, async (store) => {
        await until(async () => (await store.getRun('logged', 'new1')) === undefined, 'new1 (ended long ago) to go at start');
        await kiln('dags', 'trigger', 'logged', '--run-id', 'fresh');
        await until(async () => (await store.getRun('logged', 'fresh'))?.state === 'success', 'the fresh run to succeed');
        expect(existsSync(join(logs('fresh'), 'a/1.log'))).toBe(true);
        await until(async () => (await store.getRun('logged', 'fresh')) === undefined, 'the fresh run to be cleaned', 20_000);
        await expectGone(store, 'fresh');
      });
      await until(() => !existsSync(logs('fresh')), 'the fresh run\'s logs to go');
    } finally {
      second.child.kill('SIGTERM');
    }
    expect((await exitOf(second)).code, second.output()).toBe(0);
    expect(second.output().match(/retention: deleted 1 run/g)).toHaveLength(2);
  });
});

describe('kiln db clean: bad input', () => {
  it('exits 2 with a message naming --older-than', async () => {
    const cwd = scratchProject('kiln-db-clean-usage-');
    for (const [args, message] of [
      [['--older-than', 'abc'], /--older-than must be a duration with a unit, like '30d', '12h' or '90m', got 'abc'/],
      [['--older-than', '30'], /--older-than must be a duration with a unit.*got '30'/],
      [['--older-than', '-5d'], /--older-than must be a duration/],
      [[], /required option '--older-than <duration>' not specified/],
    ] as const) {
      const res = await runKiln(['db', 'clean', ...args], { cwd });
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(res.stdout).toBe('');
    }
    // Nothing was opened or created for bad input.
    expect(existsSync(join(cwd, '.kiln'))).toBe(false);
  });
});
