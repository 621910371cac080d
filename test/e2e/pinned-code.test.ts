/**
 * Runs pinned to their DAG code: a DAG file edited while a run of it is in flight. That run
 * finishes on the code it started with; the next run uses the new code.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { databasesUnderTest } from '../helpers/databases.js';
import { exitOf, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const databases = await databasesUnderTest('pinned_code');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

describe.each(databases)('runs pinned to their DAG code on $name', (db) => {
  it.each(['thread', 'process'] as const)('a run in flight when its DAG file changes finishes on its own version (%s)', async (executor) => {
    const cwd = scratchProject('kiln-pinned-');
    const dags = join(cwd, 'dags');
    mkdirSync(dags);
    const file = join(dags, 'pinned.ts');
    copyFileSync(join(REPO, 'test/fixtures/pinned/pinned.ts'), file);
    const url = db.url(cwd);
    const env = { KILN_DATABASE_URL: url, KILN_DAGS_FOLDER: dags, KILN_SCHEDULER_INTERVAL: '100ms', KILN_DAG_DIR_LIST_INTERVAL: '200ms', KILN_PARALLELISM: '2' };
    const gateA = join(cwd, 'gate-a');
    const gateB = join(cwd, 'gate-b');
    writeFileSync(gateB, '');
    const scheduler = startScheduler(['--executor', executor], { cwd, env });
    try {
      const a = await runKiln(['dags', 'trigger', 'pinned', '--run-id', 'a', '--params', JSON.stringify({ gate: gateA })], { cwd, env });
      expect(a.code, a.stderr).toBe(0);
      await withStore(url, (store) => until(async () => (await store.getTaskInstance({ dagId: 'pinned', runId: 'a', taskId: 'gate' }))?.state === 'running', 'run a to be waiting at its gate'));
      const v1 = (await withStore(url, (store) => store.getRun('pinned', 'a')))!.dagVersion;
      writeFileSync(file, readFileSync(file, 'utf8').replace("() => 'v1'", "() => 'v2'"));
      await withStore(url, (store) => until(async () => (await store.getDag('pinned'))?.version !== v1, 'the scheduler to parse the edited file'));
      const b = await runKiln(['dags', 'trigger', 'pinned', '--run-id', 'b', '--params', JSON.stringify({ gate: gateB })], { cwd, env });
      expect(b.code, b.stderr).toBe(0);
      writeFileSync(gateA, '');
      await withStore(url, (store) => until(async () => {
        const runs = await store.listRuns({ dagId: 'pinned' });
        return runs.length === 2 && runs.every((r) => r.state === 'success');
      }, 'both runs to succeed'));
      await withStore(url, async (store) => {
        expect(await store.getXcom({ dagId: 'pinned', runId: 'a', taskId: 'code' })).toBe('v1');
        expect(await store.getXcom({ dagId: 'pinned', runId: 'b', taskId: 'code' })).toBe('v2');
        expect((await store.getRun('pinned', 'b'))!.dagVersion).not.toBe(v1);
      });
      const versions = await runKiln(['dags', 'versions', 'pinned', '--json'], { cwd, env });
      expect(versions.code, versions.stderr).toBe(0);
      const listed = (JSON.parse(versions.stdout) as { versions: Array<{ version: string; runs: number; current: boolean }> }).versions;
      expect(listed.map((v) => [v.version === v1 ? 'v1' : 'v2', v.runs, v.current])).toEqual([['v2', 1, true], ['v1', 1, false]]);
    } finally {
      scheduler.child.kill('SIGTERM');
    }
    expect((await exitOf(scheduler)).code, scheduler.output()).toBe(0);
  });
});
