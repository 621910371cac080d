/**
 * The HTTP API through real HTTP, on SQLite and PostgreSQL: every endpoint, its errors (JSON
 * with a stable code and the right status), and that each route does what the CLI does (the
 * same app/ functions): seeded by the real CLI, checked through the store.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { taskLogFile } from '../../src/scheduler/task-work.js';
import { databasesUnderTest } from '../helpers/databases.js';
import { runKiln } from '../helpers/cli.js';
import { webProject, type WebProject } from './web-setup.js';

const databases = await databasesUnderTest('api');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

describe.each(databases)('HTTP API on $name', (db) => {
  let p: WebProject;
  beforeAll(async () => {
    p = await webProject(db);
  });
  afterAll(async () => {
    await p?.close();
  });

  it('lists DAGs with their last runs, next run and paused flag, and the import errors', async () => {
    const { status, body } = await p.api('/dags');
    expect(status).toBe(200);
    expect(body.dags).toEqual([
      expect.objectContaining({ dagId: 'web_crash', tasks: 1, lastRuns: [] }),
      expect.objectContaining({ dagId: 'web_demo', schedule: null, paused: false, tasks: 4, nextRun: null, lastRuns: [expect.objectContaining({ runId: 'seed', state: 'success', runType: 'manual' })] }),
    ]);
    expect(body.importErrors).toEqual([{ file: expect.stringMatching(/broken\.mjs$/), error: expect.stringMatching(/broken on purpose/), at: expect.any(Number) }]);
    expect((await p.api('/import-errors')).body.importErrors).toEqual(body.importErrors);
  });

  it('shows one DAG with tasks, edges and params schema; 404 with a code for an unknown one', async () => {
    const { body } = await p.api('/dags/web_demo');
    expect(body.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(['greet', 'flaky', 'wait', 'report']);
    expect(body.edges).toEqual(expect.arrayContaining([{ from: 'greet', to: 'flaky' }, { from: 'flaky', to: 'report' }, { from: 'wait', to: 'report' }]));
    expect(body.edges).toHaveLength(4);
    expect(body.paramsSchema.properties.repeat).toEqual({ type: 'integer', minimum: 1, maximum: 5, default: 1 });
    expect(await p.api('/dags/nope')).toEqual({ status: 404, body: { error: { code: 'DAG_NOT_FOUND', message: expect.stringContaining("'nope'") } } });
    expect(await p.api('/no/such/thing')).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: expect.any(String) } } });
  });

  it('shows a run with its task instances and their tries (the latest in full, earlier ones by number only)', async () => {
    const { status, body } = await p.api('/dags/web_demo/runs/seed');
    expect(status).toBe(200);
    expect(body.run).toMatchObject({ dagId: 'web_demo', runId: 'seed', state: 'success', params: { greeting: 'hello', repeat: 2 } });
    const flaky = body.taskInstances.find((t: { taskId: string }) => t.taskId === 'flaky');
    expect(flaky).toMatchObject({ state: 'success', tryNumber: 2, maxTries: 2 });
    expect(flaky.tries).toHaveLength(2);
    expect(flaky.tries[0]).toMatchObject({ tryNumber: 1, recorded: false, state: null, exitCode: null, peakRssBytes: null });
    expect(flaky.tries[1]).toMatchObject({ tryNumber: 2, recorded: true, state: 'success', isolation: 'thread' });
    expect(flaky.tries[1].peakRssBytes).toBeGreaterThan(0);
    expect(flaky.tries[1].cpuMs).toEqual(expect.any(Number));
    expect((await p.api('/dags/web_demo/runs/seed/tasks/flaky')).body).toEqual(flaky);
    expect((await p.api('/dags/web_demo/runs/nope')).body.error.code).toBe('RUN_NOT_FOUND');
    expect((await p.api('/dags/web_demo/runs/seed/tasks/nope')).body.error.code).toBe('TASK_NOT_FOUND');
    const runs = (await p.api('/dags/web_demo/runs?state=success')).body.runs;
    expect(runs.map((r: { runId: string }) => r.runId)).toContain('seed');
    expect((await p.api('/runs?state=bogus')).status).toBe(400);
  });

  it('serves log tails by byte offset, the whole file, markup as plain text, and refuses tries that did not happen', async () => {
    const file = taskLogFile((await loadConfig({ cwd: p.cwd, env: p.env })).logsFolder, 'web_demo', 'seed', 'greet', 1);
    const onDisk = readFileSync(file, 'utf8');
    expect(onDisk.match(/<script>/g)).toHaveLength(2);
    const tail = (await p.api('/dags/web_demo/runs/seed/tasks/greet/tries/1/log')).body;
    expect(tail).toEqual({ tryNumber: 1, size: Buffer.byteLength(onDisk), offset: 0, length: Buffer.byteLength(onDisk), text: onDisk });
    const last10 = (await p.api('/dags/web_demo/runs/seed/tasks/greet/tries/1/log?maxBytes=10')).body;
    expect(last10).toMatchObject({ offset: tail.size - 10, length: 10, text: onDisk.slice(-10) });
    const fromOffset = (await p.api('/dags/web_demo/runs/seed/tasks/greet/tries/1/log?offset=5&maxBytes=7')).body;
    expect(fromOffset).toMatchObject({ offset: 5, length: 7, text: onDisk.slice(5, 12) });
    const download = await fetch(`${p.web.url}api/v1/dags/web_demo/runs/seed/tasks/greet/tries/1/log/download`, { headers: p.auth });
    expect(download.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(download.headers.get('content-disposition')).toMatch(/attachment/);
    expect(await download.text()).toBe(onDisk);
    expect((await p.api('/dags/web_demo/runs/seed/tasks/flaky/tries/1/log')).body.text).toMatch(/flaky fails its first try/);
    expect((await p.api('/dags/web_demo/runs/seed/tasks/flaky/tries/2/log')).body.text).toMatch(/flaky passed on try 2/);
    expect(await p.api('/dags/web_demo/runs/seed/tasks/flaky/tries/3/log')).toMatchObject({ status: 400, body: { error: { code: 'USAGE' } } });
    expect((await p.api('/dags/web_demo/runs/seed/tasks/greet/tries/1/log?offset=-1')).status).toBe(400);
  });

  it("returns a task's history across runs for the sparklines", async () => {
    const { body } = await p.api('/dags/web_demo/tasks/greet/history?limit=5');
    expect(body.dagId).toBe('web_demo');
    const seed = body.instances.find((i: { runId: string }) => i.runId === 'seed');
    expect(seed).toMatchObject({ state: 'success', tryNumber: 1, exitCode: null, signal: null });
    expect(seed.peakRssBytes).toBeGreaterThan(0);
    expect((await p.api('/dags/web_demo/tasks/nope/history')).body.error.code).toBe('TASK_NOT_FOUND');
    expect((await p.api('/dags/nope/tasks/greet/history')).body.error.code).toBe('DAG_NOT_FOUND');
  });

  it('returns XCom values', async () => {
    // mapIndex null: the task as a whole (see test/server/mapped.test.ts for a mapped task's).
    expect((await p.api('/dags/web_demo/runs/seed/tasks/greet/xcom')).body).toEqual({ taskId: 'greet', mapIndex: null, value: { greeting: 'hello', repeat: 2 } });
    expect((await p.api('/dags/web_demo/runs/seed/tasks/greet/xcom?mapIndex=-1')).body).toEqual({ taskId: 'greet', mapIndex: -1, value: { greeting: 'hello', repeat: 2 } });
    expect((await p.api('/dags/web_demo/runs/seed/tasks/nope/xcom')).status).toBe(404);
  });

  it('triggers runs with params checked like the CLI, and refuses bad input with a code', async () => {
    const bad = await p.api('/dags/web_demo/runs', { method: 'POST', json: { params: { repeat: 9 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({ code: 'USAGE', message: expect.stringMatching(/params\.repeat: must be <= 5/), violations: ['params.repeat: must be <= 5'] });
    expect((await p.api('/dags/web_demo/runs', { method: 'POST', json: { params: { colour: 'red' } } })).body.error.message).toMatch(/colour/);
    const ok = await p.api('/dags/web_demo/runs', { method: 'POST', json: { runId: 'api1', params: { greeting: 'hey' } } });
    expect(ok.status).toBe(201);
    expect(ok.body).toEqual({ run: expect.objectContaining({ runId: 'api1', state: 'queued', runType: 'manual', params: { greeting: 'hey', repeat: 1 } }), paused: false });
    expect(await p.store.getRun('web_demo', 'api1')).toMatchObject({ state: 'queued', params: { greeting: 'hey', repeat: 1 } });
    expect((await p.store.getTaskInstances('web_demo', 'api1')).map((t) => t.state)).toEqual(['none', 'none', 'none', 'none']);
    // The same run id again: refused, as by the CLI.
    expect((await p.api('/dags/web_demo/runs', { method: 'POST', json: { runId: 'api1' } })).body.error.code).toBe('USAGE');
    expect((await p.api('/dags/nope/runs', { method: 'POST', json: {} })).body.error.code).toBe('DAG_NOT_FOUND');
    // Mutations take JSON only, from this origin only.
    expect(await p.api('/dags/web_demo/runs', { method: 'POST', body: 'runId=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).toMatchObject({ status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE' } } });
    expect(await p.api('/dags/web_demo/runs', { method: 'POST', json: {}, headers: { origin: 'http://evil.example' } })).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    expect((await p.api('/dags/web_demo/runs', { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await p.api('/dags/web_demo/runs', { method: 'POST', json: { logicalDate: 'yesterday' } })).status).toBe(400);
  });

  it('pages the grid of runs x tasks with a cursor', async () => {
    const first = (await p.api('/dags/web_demo/grid?limit=1')).body;
    expect(first.tasks).toEqual(['greet', 'flaky', 'wait', 'report']);
    expect(first.runs).toHaveLength(1);
    expect(first.cells).toHaveLength(4);
    expect(first.cells.every((c: { run: number }) => c.run === 0)).toBe(true);
    expect(first.nextCursor).toEqual(expect.any(String));
    const all = (await p.api('/dags/web_demo/grid?limit=100')).body;
    expect(all.nextCursor).toBeNull();
    const second = (await p.api(`/dags/web_demo/grid?limit=100&before=${encodeURIComponent(first.nextCursor)}`)).body;
    expect([first.runs[0].runId, ...second.runs.map((r: { runId: string }) => r.runId)]).toEqual(all.runs.map((r: { runId: string }) => r.runId));
    const seedIndex = all.runs.findIndex((r: { runId: string }) => r.runId === 'seed');
    const flakyCell = all.cells.find((c: { run: number; task: number }) => c.run === seedIndex && all.tasks[c.task] === 'flaky');
    expect(flakyCell).toEqual({ run: seedIndex, task: 1, state: 'success', tryNumber: 2 });
    expect((await p.api('/dags/web_demo/grid?before=garbage')).status).toBe(400);
    expect((await p.api('/dags/web_demo/grid?limit=0')).status).toBe(400);
    expect((await p.api('/dags/nope/grid')).status).toBe(404);
  });

  it('clears and marks with a dry run first, like `kiln tasks clear|mark`', async () => {
    const dry = await p.api('/dags/web_demo/runs/seed/clear', { method: 'POST', json: { taskId: 'flaky', downstream: true, dryRun: true } });
    expect(dry.body).toEqual({ dryRun: true, cleared: ['flaky', 'report'], skipped: [], conflicts: [] });
    expect((await p.store.getTaskInstance({ dagId: 'web_demo', runId: 'seed', taskId: 'flaky' }))!.state).toBe('success');
    expect((await p.store.getRun('web_demo', 'seed'))!.state).toBe('success');
    const markDry = await p.api('/dags/web_demo/runs/seed/tasks/greet/mark', { method: 'POST', json: { state: 'failed', dryRun: true } });
    // The run's outcome follows its leaves (Airflow's rule): report still succeeded.
    expect(markDry.body).toEqual({ dryRun: true, changed: [{ taskId: 'greet', mapIndex: -1, from: 'success', to: 'failed' }], runState: 'success' });
    expect((await p.store.getTaskInstance({ dagId: 'web_demo', runId: 'seed', taskId: 'greet' }))!.state).toBe('success');

    const real = await p.api('/dags/web_demo/runs/seed/clear', { method: 'POST', json: { taskId: 'flaky', downstream: true } });
    expect(real.body).toEqual({ dryRun: false, cleared: ['flaky', 'report'], skipped: [], conflicts: [] });
    expect((await p.store.getTaskInstances('web_demo', 'seed')).map((t) => [t.taskId, t.state])).toEqual([['flaky', 'none'], ['greet', 'success'], ['report', 'none'], ['wait', 'success']]);
    expect((await p.store.getRun('web_demo', 'seed'))!.state).toBe('queued');
    const mark = await p.api('/dags/web_demo/runs/seed/tasks/flaky/mark', { method: 'POST', json: { state: 'success' } });
    expect(mark.body).toEqual({ dryRun: false, changed: [{ taskId: 'flaky', mapIndex: -1, from: 'none', to: 'success' }], runState: 'queued' });
    expect((await p.store.getTaskInstance({ dagId: 'web_demo', runId: 'seed', taskId: 'flaky' }))!.state).toBe('success');
    // The CLI sees the same (it calls the same functions).
    const shown = await runKiln(['runs', 'show', 'web_demo', 'seed', '--json'], { cwd: p.cwd, env: p.env });
    expect(JSON.parse(shown.stdout).tasks.find((t: { taskId: string }) => t.taskId === 'flaky').state).toBe('success');
    expect((await p.api('/dags/web_demo/runs/seed/tasks/flaky/mark', { method: 'POST', json: { state: 'running' } })).body.error.code).toBe('USAGE');
    expect((await p.api('/dags/web_demo/runs/seed/clear', { method: 'POST', json: { downstream: true } })).body.error.code).toBe('USAGE');
    expect((await p.api('/dags/web_demo/runs/nope/clear', { method: 'POST', json: {} })).body.error.code).toBe('RUN_NOT_FOUND');
  });

  it('pauses and unpauses a DAG', async () => {
    expect((await p.api('/dags/web_demo/pause', { method: 'POST', json: {} })).body.paused).toBe(true);
    expect((await p.store.getDag('web_demo'))!.isPaused).toBe(true);
    expect((await p.api('/dags')).body.dags.find((d: { dagId: string }) => d.dagId === 'web_demo').paused).toBe(true);
    expect((await p.api('/dags/web_demo/unpause', { method: 'POST', json: {} })).body.paused).toBe(false);
    expect((await p.store.getDag('web_demo'))!.isPaused).toBe(false);
  });

  it('lists, sets and deletes pools', async () => {
    expect((await p.api('/pools/narrow', { method: 'PUT', json: { slots: 2, description: 'two at a time' } })).body).toEqual({ name: 'narrow', slots: 2, description: 'two at a time' });
    expect((await p.api('/pools/narrow', { method: 'PUT', json: { slots: 3 } })).body).toEqual({ name: 'narrow', slots: 3, description: 'two at a time' });
    expect((await p.api('/pools')).body.pools).toContainEqual({ name: 'narrow', slots: 3, usedSlots: 0, description: 'two at a time' });
    expect((await p.api('/pools/narrow', { method: 'PUT', json: { slots: -1 } })).status).toBe(400);
    expect((await p.api('/pools/narrow', { method: 'DELETE' })).status).toBe(204);
    expect(await p.api('/pools/narrow', { method: 'DELETE' })).toMatchObject({ status: 404, body: { error: { code: 'POOL_NOT_FOUND' } } });
    expect(await p.api('/pools/default_pool', { method: 'DELETE' })).toMatchObject({ status: 400, body: { error: { code: 'USAGE' } } });
  });

  it('reports health with the scheduler heartbeat age', async () => {
    const { body } = await p.api('/health');
    expect(body).toMatchObject({ status: 'ok', database: 'ok' });
    // `dags test` beat as the owner of its run.
    expect(body.schedulers.length).toBeGreaterThan(0);
    expect(body.schedulerHeartbeatAgeMs).toBeGreaterThanOrEqual(0);
    expect(body.schedulerHeartbeatAgeMs).toBe(Math.min(...body.schedulers.map((s: { heartbeatAgeMs: number }) => s.heartbeatAgeMs)));
  });

  it('sends security headers, and refuses a Host that is not its own (DNS rebinding)', async () => {
    const res = await fetch(`${p.web.url}api/v1/health`, { headers: p.auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const port = new URL(p.web.url).port;
    expect(await rawGet(p.web.url, '/api/v1/health', `localhost:${port}`, p.auth)).toMatchObject({ status: 200 });
    expect(await rawGet(p.web.url, '/api/v1/health', `evil.example:${port}`, p.auth)).toEqual({ status: 403, body: { error: { code: 'FORBIDDEN', message: expect.stringContaining('evil.example') } } });
  });
});

/** A GET with a chosen Host header (fetch does not let one set it). */
function rawGet(base: string, path: string, host: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, headers: { ...headers, host } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}
