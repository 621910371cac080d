/**
 * Operating a live scheduler from other processes: tasks clear / mark on a run it is
 * driving, pause / unpause, pools, logs, running a task by hand, DAG files that break and
 * get fixed, and a clean SIGTERM.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, FIXTURES, readRecords, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';
import type { Store } from '../../src/store/types.js';

function project(dagsFolder: string, extra: Record<string, string> = {}) {
  const cwd = scratchProject('kiln-sched-ops-');
  const url = `sqlite:${join(cwd, 'kiln.db')}`;
  const env = { KILN_DATABASE_URL: url, KILN_DAGS_FOLDER: dagsFolder, KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms', ...extra };
  const kiln = async (...args: string[]) => {
    const res = await runKiln(args, { cwd, env });
    expect(res.code, `kiln ${args.join(' ')}: ${res.stderr}`).toBe(0);
    return res.stdout;
  };
  return { cwd, url, env, kiln };
}

const ti = (store: Store, runId: string, taskId: string, dagId = 'gated') => store.getTaskInstance({ dagId, runId, taskId });

describe('operating a live scheduler', () => {
  it('clear and mark on a running run, pause, pools with priorities, logs, tasks run, SIGTERM', async () => {
    const { cwd, url, env, kiln } = project(join(FIXTURES, 'ops'));
    const gateFile = join(cwd, 'gate-open');
    const p = startScheduler(['--executor', 'thread'], { cwd, env });
    try {
      await withStore(url, async (store) => {
        await kiln('dags', 'trigger', 'gated', '--run-id', 'g1', '--params', JSON.stringify({ gateFile }));
        await until(async () => (await ti(store, 'g1', 'gate'))?.state === 'running', 'gate to run');

        // Clear a finished task while another one of the run is running: only it runs again.
        const cleared = JSON.parse(await kiln('tasks', 'clear', 'gated', 'g1', 'a', '--json'));
        expect(cleared).toEqual({ cleared: ['a'], skipped: [], conflicts: [] });
        await until(async () => {
          const a = await ti(store, 'g1', 'a');
          return a?.state === 'success' && a.tryNumber === 2;
        }, 'a to run again');
        expect(await ti(store, 'g1', 'gate')).toMatchObject({ state: 'running', tryNumber: 1 });
        // A running task instance is never cleared.
        expect(JSON.parse(await kiln('tasks', 'clear', 'gated', 'g1', 'gate', '--json'))).toEqual({ cleared: [], skipped: [{ taskId: 'gate', mapIndex: -1, state: 'running' }], conflicts: [] });

        // Mark the running task: its scheduler cancels the try and runs the downstream.
        await kiln('tasks', 'mark', 'gated', 'g1', 'gate', 'success');
        await until(async () => (await store.getRun('gated', 'g1'))?.state === 'success', 'g1 to succeed after the mark');
        const shown = JSON.parse(await kiln('runs', 'show', 'gated', 'g1', '--json'));
        expect(shown.tasks.map((t: { taskId: string; state: string; tryNumber: number }) => [t.taskId, t.state, t.tryNumber])).toEqual([
          ['a', 'success', 2],
          ['c', 'success', 1],
          ['gate', 'success', 1],
        ]);

        // Clear a finished run: it runs again from the start, each task with a new try.
        writeFileSync(gateFile, '');
        await kiln('tasks', 'clear', 'gated', 'g1');
        await until(async () => (await store.getTaskInstances('gated', 'g1')).every((t) => t.state === 'success' && t.tryNumber === (t.taskId === 'a' ? 3 : 2)), 'the cleared run to run again');
        await until(async () => (await store.getRun('gated', 'g1'))?.state === 'success', 'g1 to end again');

        // Logs of a try, and a task run by hand (nothing recorded).
        expect(await kiln('tasks', 'logs', 'gated', 'g1', 'a', '--try', '1')).toMatch(/a ran, try 1/);
        expect(await kiln('tasks', 'logs', 'gated', 'g1', 'a')).toMatch(/a ran, try 3/);
        const byHand = JSON.parse(await kiln('tasks', 'run', 'gated', 'a', 'g1', '--json'));
        expect(byHand).toMatchObject({ outcome: 'success', value: 'a3', tryNumber: 3 });
        expect(await ti(store, 'g1', 'a')).toMatchObject({ state: 'success', tryNumber: 3 });

        // Pause: a triggered run waits; unpause: it runs.
        await kiln('dags', 'pause', 'gated');
        await kiln('dags', 'trigger', 'gated', '--run-id', 'g2', '--params', JSON.stringify({ gateFile }));
        await until(() => p.output().includes('run g2 of DAG gated waits: the DAG is paused'), 'the scheduler to hold g2 back');
        expect((await store.getRun('gated', 'g2'))!.state).toBe('queued');
        await kiln('dags', 'unpause', 'gated');
        await until(async () => (await store.getRun('gated', 'g2'))?.state === 'success', 'g2 to run once unpaused');

        // A pool of 2 slots: never more than 2 of its tasks at once, highest priorityWeight first.
        await kiln('pools', 'set', 'narrow', '2', '--description', 'two at a time');
        expect(JSON.parse(await kiln('pools', 'list', '--json')).pools).toContainEqual({ name: 'narrow', slots: 2, usedSlots: 0, description: 'two at a time' });
        const sideFile = join(cwd, 'pooled.jsonl');
        await kiln('dags', 'trigger', 'pooled', '--run-id', 'p1', '--params', JSON.stringify({ sideFile }));
        await until(async () => (await store.getRun('pooled', 'p1'))?.state === 'success', 'the pooled run');
        const events = readRecords<{ task: string; event: string; t: number }>(sideFile);
        let running = 0;
        let peak = 0;
        for (const e of events) peak = Math.max(peak, (running += e.event === 'start' ? 1 : -1));
        expect(peak).toBe(2);
        expect(events.filter((e) => e.event === 'start').slice(0, 2).map((e) => e.task).sort()).toEqual(['p4', 'p5']);
      });
    } finally {
      p.child.kill('SIGTERM');
    }
    expect((await exitOf(p)).code, p.output()).toBe(0);
  });

  it('records import errors, clears them once the file is fixed, and stores a changed DAG as a new version', async () => {
    const { cwd, url, env, kiln } = project('', { KILN_DAG_DIR_LIST_INTERVAL: '100ms' });
    const dags = join(cwd, 'dags');
    mkdirSync(dags);
    env.KILN_DAGS_FOLDER = dags;
    const file = join(dags, 'changing.ts');
    writeFileSync(file, "import { dag } from 'kiln';\nexport default dag({ id: 'changing' }, (d) => { d.task('one', async () => 1, { upstream: ['nope'] }); });\n");
    const p = startScheduler(['--executor', 'thread'], { cwd, env });
    try {
      await withStore(url, async (store) => {
        const errors = await until(async () => {
          const list = await store.listImportErrors();
          return list.length > 0 ? list : undefined;
        }, 'the import error');
        expect(errors).toEqual([{ file, error: expect.stringMatching(/unknown task 'nope'/), at: expect.any(Number) }]);

        writeFileSync(file, "import { dag } from 'kiln';\nexport default dag({ id: 'changing' }, (d) => { d.task('one', async () => 1); });\n");
        const v1 = await until(async () => ((await store.listImportErrors()).length === 0 ? (await store.getDag('changing'))?.version : undefined), 'the fixed file to import');

        writeFileSync(file, "import { dag } from 'kiln';\nexport default dag({ id: 'changing' }, (d) => { d.chain(d.task('one', async () => 1), d.task('two', async () => 2)); });\n");
        const v2 = await until(async () => {
          const version = (await store.getDag('changing'))?.version;
          return version !== v1 ? version : undefined;
        }, 'the changed file to be stored as a new version');
        expect((await store.getDagVersion('changing', v1))!.tasks.map((t) => t.taskId)).toEqual(['one']);
        expect((await store.getDagVersion('changing', v2!))!.tasks.map((t) => t.taskId)).toEqual(['one', 'two']);

        await kiln('dags', 'trigger', 'changing', '--run-id', 'r');
        await until(async () => (await store.getRun('changing', 'r'))?.state === 'success', 'a run of the new version');
        expect((await store.getTaskInstances('changing', 'r')).map((t) => t.taskId)).toEqual(['one', 'two']);
      });
    } finally {
      p.child.kill('SIGTERM');
    }
    expect((await exitOf(p)).code, p.output()).toBe(0);
  });
});
