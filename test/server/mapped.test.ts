/**
 * The HTTP API and mapped tasks, on SQLite and PostgreSQL, seeded by the real CLI with
 * test/fixtures/mapped/fan.ts (`list` -> `square` mapped over [1, 2, 3] -> `total`): every
 * instance listed with its mapIndex, one summing grid cell per run for a mapped task, routes
 * that address one instance by `?mapIndex=` (and refuse a mapped task without one, naming its
 * map indexes), the collected XCom, an instance's page and states, clear and mark of one
 * instance, and change events carrying the map index.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln } from '../helpers/cli.js';
import { openSse } from '../helpers/sse.js';
import { webProject, type WebProject } from './web-setup.js';

const MAPPED_FIXTURES = join(REPO, 'test/fixtures/mapped');
const databases = await databasesUnderTest('mapped');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

describe.each(databases)('HTTP API with mapped tasks on $name', (db) => {
  let p: WebProject;
  const run = (runId: string) => `/dags/fan/runs/${runId}`;
  beforeAll(async () => {
    p = await webProject(db, {
      dagsFolder: MAPPED_FIXTURES,
      seeds: [
        ['dags', 'test', 'fan', '--run-id', 'ok', '--logical-date', '2026-01-01'],
        ['dags', 'test', 'fan', '--run-id', 'bad', '--logical-date', '2026-01-02', '--params', '{"fail":2}'],
      ],
    });
  });
  afterAll(async () => {
    await p?.close();
  });

  it('lists every task instance of a run with its mapIndex, and says which tasks are mapped', async () => {
    const { body } = await p.api(run('ok'));
    expect(body.taskInstances.map((t: { taskId: string; mapIndex: number; state: string }) => [t.taskId, t.mapIndex, t.state])).toEqual([
      ['list', -1, 'success'], ['square', 0, 'success'], ['square', 1, 'success'], ['square', 2, 'success'], ['total', -1, 'success'],
    ]);
    const dag = (await p.api('/dags/fan')).body;
    expect(dag.tasks.map((t: { taskId: string; mapped: boolean }) => [t.taskId, t.mapped])).toEqual([['list', false], ['square', true], ['total', false]]);
  });

  it('sums a mapped task up as one grid cell per run, never one per instance', async () => {
    const grid = (await p.api('/dags/fan/grid')).body;
    expect(grid.tasks).toEqual(['list', 'square', 'total']);
    expect(grid.runs.map((r: { runId: string }) => r.runId)).toEqual(['bad', 'ok']);
    expect(grid.cells).toHaveLength(6);
    const cell = (runId: string, taskId: string) => grid.cells.find((c: { run: number; task: number }) => grid.runs[c.run].runId === runId && grid.tasks[c.task] === taskId);
    expect(cell('ok', 'square')).toEqual({ run: 1, task: 1, state: 'success', tryNumber: 1, mapped: true, count: 3, states: { success: 3 } });
    // A failure stands for the cell while others succeeded (Airflow's grid order).
    expect(cell('bad', 'square')).toEqual({ run: 0, task: 1, state: 'failed', tryNumber: 1, mapped: true, count: 3, states: { success: 2, failed: 1 } });
    expect(cell('bad', 'list')).toEqual({ run: 0, task: 0, state: 'success', tryNumber: 1 });
    expect(cell('bad', 'total')).toEqual({ run: 0, task: 2, state: 'upstream_failed', tryNumber: 0 });
  });

  it('addresses one instance by ?mapIndex=, and refuses a mapped task without one, naming its map indexes', async () => {
    const one = await p.api(`${run('bad')}/tasks/square?mapIndex=1`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ taskId: 'square', mapIndex: 1, state: 'failed', tryNumber: 1 });
    expect(one.body.tries[0].error).toMatch(/item 2 fails on purpose/);
    expect((await p.api(`${run('ok')}/tasks/list`)).body).toMatchObject({ taskId: 'list', mapIndex: -1, state: 'success' });
    expect((await p.api(`${run('ok')}/tasks/list?mapIndex=-1`)).body).toMatchObject({ taskId: 'list', mapIndex: -1 });
    expect(await p.api(`${run('ok')}/tasks/square`)).toEqual({ status: 400, body: { error: { code: 'USAGE', message: expect.stringMatching(/'square'.*mapped.*0\.\.2/) } } });
    expect(await p.api(`${run('ok')}/tasks/square?mapIndex=7`)).toEqual({ status: 404, body: { error: { code: 'TASK_NOT_FOUND', message: expect.stringMatching(/no map index 7 \(it has 0\.\.2\)/) } } });
    expect(await p.api(`${run('ok')}/tasks/list?mapIndex=0`)).toEqual({ status: 404, body: { error: { code: 'TASK_NOT_FOUND', message: expect.stringMatching(/'list'.*not mapped/) } } });
    expect((await p.api(`${run('ok')}/tasks/square?mapIndex=-2`)).status).toBe(400);
    expect((await p.api(`${run('ok')}/tasks/square?mapIndex=one`)).status).toBe(400);
    expect((await p.api(`${run('nope')}/tasks/square?mapIndex=1`)).body.error.code).toBe('RUN_NOT_FOUND');
  });

  it("serves one instance's log, and refuses a mapped task's log without a map index", async () => {
    const tail = await p.api(`${run('ok')}/tasks/square/tries/1/log?mapIndex=2`);
    expect(tail.status).toBe(200);
    expect(tail.body.text).toMatch(/squaring 3 at map index 2/);
    expect(tail.body.text).not.toMatch(/squaring 1/);
    const download = await fetch(`${p.web.url}api/v1${run('ok')}/tasks/square/tries/1/log/download?mapIndex=0`, { headers: p.auth });
    expect(download.headers.get('content-disposition')).toMatch(/fan_ok_square_0_1\.log/);
    expect(await download.text()).toMatch(/squaring 1 at map index 0/);
    expect((await p.api(`${run('ok')}/tasks/square/tries/1/log`)).body.error).toEqual({ code: 'USAGE', message: expect.stringMatching(/mapped/) });
    expect((await p.api(`${run('ok')}/tasks/square/tries/2/log?mapIndex=0`)).body.error.code).toBe('USAGE');
  });

  it("returns a mapped task's XCom as the collected list, and one instance's with ?mapIndex=", async () => {
    expect((await p.api(`${run('ok')}/tasks/square/xcom`)).body).toEqual({ taskId: 'square', mapIndex: null, value: [1, 4, 9] });
    // The failed instance has no value: the list holds the successful ones, in map-index order.
    expect((await p.api(`${run('bad')}/tasks/square/xcom`)).body.value).toEqual([1, 9]);
    expect((await p.api(`${run('ok')}/tasks/square/xcom?mapIndex=2`)).body).toEqual({ taskId: 'square', mapIndex: 2, value: 9 });
    expect((await p.api(`${run('ok')}/tasks/list/xcom`)).body).toEqual({ taskId: 'list', mapIndex: null, value: [1, 2, 3] });
    expect((await p.api(`${run('ok')}/tasks/total/xcom`)).body.value).toBe(14);
    expect((await p.api(`${run('ok')}/tasks/square/xcom?mapIndex=3`)).status).toBe(404);
    expect((await p.api(`${run('ok')}/tasks/nope/xcom`)).status).toBe(404);
  });

  it("pages a task's instances with the counts of all, filters them by state, and lists them by state", async () => {
    const page = (await p.api(`${run('bad')}/tasks/square/instances?limit=2`)).body;
    expect(page).toMatchObject({ dagId: 'fan', runId: 'bad', taskId: 'square', mapped: true, count: 3, states: { success: 2, failed: 1 }, total: 3, offset: 0 });
    expect(page.instances.map((i: { mapIndex: number; state: string }) => [i.mapIndex, i.state])).toEqual([[0, 'success'], [1, 'failed']]);
    expect(page.instances[1].error).toMatch(/item 2 fails on purpose/);
    expect((await p.api(`${run('bad')}/tasks/square/instances?limit=2&offset=2`)).body.instances.map((i: { mapIndex: number }) => i.mapIndex)).toEqual([2]);
    const failed = (await p.api(`${run('bad')}/tasks/square/instances?state=failed`)).body;
    expect([failed.total, failed.instances.map((i: { mapIndex: number }) => i.mapIndex)]).toEqual([1, [1]]);
    expect((await p.api(`${run('bad')}/tasks/list/instances`)).body).toMatchObject({ mapped: false, count: 1, instances: [{ mapIndex: -1, state: 'success' }] });
    expect((await p.api(`${run('bad')}/tasks/square/instances?state=bogus`)).status).toBe(400);
    expect((await p.api(`${run('bad')}/tasks/square/instances?limit=0`)).status).toBe(400);
    expect((await p.api(`${run('bad')}/tasks/nope/instances`)).body.error.code).toBe('TASK_NOT_FOUND');

    const byState = (await p.api(`${run('bad')}/tasks/square/instances/by-state`)).body;
    expect(byState).toEqual({ dagId: 'fan', runId: 'bad', taskId: 'square', mapped: true, count: 3, feedPosition: expect.any(Number), mapIndexes: { success: [0, 2], failed: [1] } });
    expect(byState.feedPosition).toBeGreaterThan(0);
  });

  it("reads one map index's history across runs", async () => {
    const { body } = await p.api('/dags/fan/tasks/square/history?mapIndex=1');
    expect(body.mapIndex).toBe(1);
    expect(body.instances.map((i: { runId: string; state: string }) => [i.runId, i.state])).toEqual([['bad', 'failed'], ['ok', 'success']]);
    expect((await p.api('/dags/fan/tasks/list/history')).body.instances).toHaveLength(2);
  });

  it('clears one instance (with downstream: whole tasks) or every instance, a dry run first', async () => {
    const clear = (json: Record<string, unknown>) => p.api(`${run('ok')}/clear`, { method: 'POST', json });
    expect((await clear({ taskId: 'square', dryRun: true })).body).toEqual({ dryRun: true, cleared: ['square[0]', 'square[1]', 'square[2]'], skipped: [], conflicts: [] });
    expect((await clear({ taskId: 'square', mapIndex: 1, downstream: true, dryRun: true })).body).toEqual({ dryRun: true, cleared: ['square[1]', 'total'], skipped: [], conflicts: [] });
    expect((await clear({ mapIndex: 1, dryRun: true })).body.error.code).toBe('USAGE');
    expect((await clear({ taskId: 'square', mapIndex: -2, dryRun: true })).status).toBe(400);
    expect((await clear({ taskId: 'square', mapIndex: 'one', dryRun: true })).status).toBe(400);
    expect(await clear({ taskId: 'square', mapIndex: 9, dryRun: true })).toMatchObject({ status: 404, body: { error: { code: 'TASK_NOT_FOUND', message: expect.stringMatching(/0\.\.2/) } } });
    expect((await p.store.getRun('fan', 'ok'))!.state).toBe('success');

    expect((await clear({ taskId: 'square', mapIndex: 1 })).body.cleared).toEqual(['square[1]']);
    const tis = await p.store.getTaskInstances('fan', 'ok');
    expect(tis.filter((t) => t.taskId === 'square').map((t) => [t.mapIndex, t.state])).toEqual([[0, 'success'], [1, 'none'], [2, 'success']]);
    expect((await p.store.getRun('fan', 'ok'))!.state).toBe('queued');
    // The grid's cell counts the cleared instance.
    const grid = (await p.api('/dags/fan/grid')).body;
    const square = grid.cells.find((c: { run: number; task: number }) => grid.runs[c.run].runId === 'ok' && grid.tasks[c.task] === 'square');
    expect(square).toMatchObject({ mapped: true, count: 3, states: { success: 2, none: 1 }, state: 'none' });
  });

  it('marks exactly one instance, and needs its map index; the change event carries it', async () => {
    const events = await openSse(`${p.web.url}api/v1/events?dagId=fan`, p.auth);
    expect((await events.next()).event).toBe('hello');
    const mark = (query: string, json: Record<string, unknown>) => p.api(`${run('bad')}/tasks/square/mark${query}`, { method: 'POST', json });
    expect(await mark('', { state: 'success', dryRun: true })).toEqual({ status: 400, body: { error: { code: 'USAGE', message: expect.stringMatching(/mapped.*0\.\.2/) } } });
    expect((await mark('?mapIndex=1', { state: 'success', dryRun: true })).body).toEqual({ dryRun: true, changed: [{ taskId: 'square', mapIndex: 1, from: 'failed', to: 'success' }], runState: 'failed' });
    expect((await p.store.getTaskInstance({ dagId: 'fan', runId: 'bad', taskId: 'square', mapIndex: 1 }))!.state).toBe('failed');
    expect((await mark('?mapIndex=1', { state: 'success' })).body.changed).toEqual([{ taskId: 'square', mapIndex: 1, from: 'failed', to: 'success' }]);
    expect((await p.store.getTaskInstances('fan', 'bad')).filter((t) => t.taskId === 'square').map((t) => t.state)).toEqual(['success', 'success', 'success']);
    const [change] = (await events.until((m) => m.event === 'change')).filter((m) => m.event === 'change').map((m) => JSON.parse(m.data));
    expect(change).toMatchObject({ kind: 'ti', dagId: 'fan', runId: 'bad', taskId: 'square', mapIndex: 1, state: 'success' });
    events.close();
    // The CLI sees the same instance marked.
    const shown = await runKiln(['runs', 'show', 'fan', 'bad', '--json'], { cwd: p.cwd, env: p.env });
    expect(JSON.parse(shown.stdout).tasks.find((t: { taskId: string; mapIndex: number }) => t.taskId === 'square' && t.mapIndex === 1).state).toBe('success');
  });
});
