/**
 * The CLI and mapped task instances, through the built `kiln` (test/fixtures/mapped): `kiln
 * dags test` lists one JSON entry per instance and prints a mapped task as one line, live and
 * in its summary table (also for 2,000 instances); `kiln runs show` groups the instances;
 * `kiln tasks logs|mark|clear|run` take `--map-index N` (checked: an integer >= -1 naming an
 * instance that exists, else exit 2 with what exists), a mapped task's logs and mark need it,
 * and a cleared instance runs again alone under the scheduler.
 *
 * SQLite only: these are the CLI's faces of the app/ functions; test/server/mapped.test.ts
 * runs the same functions on both databases.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, startScheduler, withStore } from '../fixtures/scheduler/harness.js';

const FIXTURES = join(REPO, 'test/fixtures/mapped');

interface Report {
  runId: string;
  state: string;
  tasks: Array<{ taskId: string; mapIndex: number; state: string; tries: number; error: string | null }>;
}

describe('mapped task instances in the CLI', () => {
  const cwd = scratchProject('kiln-mapped-cli-');
  const env = { KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_DAGS_FOLDER: FIXTURES, KILN_EXECUTOR: 'thread', KILN_SCHEDULER_INTERVAL: '100ms' };
  const kiln = (...args: string[]) => runKiln(args, { cwd, env });

  beforeAll(async () => {
    const ok = await kiln('dags', 'test', 'fan', '--run-id', 'ok', '--json');
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('dags test: --json lists every instance with its mapIndex; the live lines and the table show the map as one line', async () => {
    const ok = JSON.parse((await kiln('runs', 'show', 'fan', 'ok', '--json')).stdout);
    expect(ok.tasks.map((t: { taskId: string; mapIndex: number }) => [t.taskId, t.mapIndex])).toEqual([['list', -1], ['square', 0], ['square', 1], ['square', 2], ['total', -1]]);

    const json = await kiln('dags', 'test', 'fan', '--run-id', 'j', '--json');
    const report = JSON.parse(json.stdout) as Report;
    expect(report.tasks.map((t) => [t.taskId, t.mapIndex, t.state, t.tries])).toEqual([
      ['list', -1, 'success', 1], ['square', 0, 'success', 1], ['square', 1, 'success', 1], ['square', 2, 'success', 1], ['total', -1, 'success', 1],
    ]);
    // Every field the contract had is still there.
    expect(Object.keys(report.tasks[1]!)).toEqual(['taskId', 'mapIndex', 'state', 'tries', 'durationMs', 'isolation', 'exitCode', 'signal', 'error', 'peakRssBytes', 'cpuMs']);

    const bad = await kiln('dags', 'test', 'fan', '--run-id', 'bad', '--params', '{"fail":2}');
    expect(bad.code).toBe(1);
    // The table: one row for the three instances, with the first failure's error.
    expect(bad.stdout).toMatch(/^square \[0\.\.2\]\s+2 success, 1 failed\s.*\[1\] TASK_FAILED: item 2 fails on purpose$/m);
    expect(bad.stdout).toMatch(/^total\s+upstream_failed/m);
    expect(bad.stdout).not.toMatch(/^square\s+success/m);
    // The live lines (a pipe): the failed instance by name, then the map summed up once; no line per successful instance.
    expect(bad.stderr).toMatch(/✘ square\[1\] failed: TASK_FAILED: item 2 fails on purpose/);
    expect(bad.stderr).toMatch(/✘ square \[0\.\.2\] 2 success, 1 failed/);
    expect(bad.stderr).not.toMatch(/square\[0\]|square\[2\]/);
  });

  it('dags test: 2,000 instances are one line live and one row in the table', async () => {
    const res = await runKiln(['dags', 'test', 'wide', '--run-id', 'w'], { cwd, env, timeoutMs: 120_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^each \[0\.\.1999\]\s+2000 success/m);
    expect(res.stdout.trim().split('\n').length).toBeLessThan(10);
    expect(res.stderr).toMatch(/✔ each \[0\.\.1999\] 2000 success/);
    expect(res.stderr.trim().split('\n').length).toBeLessThan(10);
    const show = await kiln('runs', 'show', 'wide', 'w');
    expect(show.stdout).toMatch(/^each \[0\.\.1999\]\s+2000 success/m);
    expect(show.stdout.trim().split('\n').length).toBeLessThan(10);
  });

  it("runs show groups a mapped task's instances on one line; --json lists each with its mapIndex", async () => {
    const show = await kiln('runs', 'show', 'fan', 'bad');
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^list\s+success\s+1\/1/m);
    expect(show.stdout).toMatch(/^square \[0\.\.2\]\s+2 success, 1 failed\s.*\[1\] TASK_FAILED: item 2 fails on purpose$/m);
    const json = JSON.parse((await kiln('runs', 'show', 'fan', 'bad', '--json')).stdout);
    expect(json.tasks.filter((t: { taskId: string }) => t.taskId === 'square').map((t: { mapIndex: number; state: string }) => [t.mapIndex, t.state])).toEqual([[0, 'success'], [1, 'failed'], [2, 'success']]);
  });

  it('tasks logs: --map-index picks an instance; a mapped task needs one, and a wrong one names what exists', async () => {
    const one = await kiln('tasks', 'logs', 'fan', 'ok', 'square', '--map-index', '1');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/squaring 2 at map index 1/);
    expect(one.stdout).not.toMatch(/map index [02]/);
    const none = await kiln('tasks', 'logs', 'fan', 'ok', 'square');
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/task 'square' of run 'ok' is mapped.*0\.\.2/)]);
    const missing = await kiln('tasks', 'logs', 'fan', 'ok', 'square', '--map-index', '5');
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/no map index 5 \(it has 0\.\.2\)/)]);
    const unmapped = await kiln('tasks', 'logs', 'fan', 'ok', 'list', '--map-index', '0');
    expect([unmapped.code, unmapped.stderr]).toEqual([2, expect.stringMatching(/'list'.*not mapped/)]);
    expect((await kiln('tasks', 'logs', 'fan', 'ok', 'list', '--map-index', '-1')).stdout).toBe((await kiln('tasks', 'logs', 'fan', 'ok', 'list')).stdout);
    for (const bad of ['-2', 'one', '1.5']) {
      const res = await kiln('tasks', 'logs', 'fan', 'ok', 'square', '--map-index', bad);
      expect([res.code, res.stderr]).toEqual([2, expect.stringMatching(/--map-index must be an integer >= -1/)]);
    }
    const callbacks = await kiln('tasks', 'logs', 'fan', 'ok', 'square', '--callbacks');
    expect([callbacks.code, callbacks.stderr]).toEqual([2, expect.stringMatching(/mapped/)]);
    expect((await kiln('tasks', 'logs', 'fan', 'ok', 'square', '--callbacks', '--map-index', '0')).code).toBe(0);
  });

  it('tasks run: --map-index runs one instance with its item; a downstream reads the collected results', async () => {
    // The task's own output goes to the terminal first, then the JSON document.
    const jsonOf = (stdout: string) => JSON.parse(stdout.slice(stdout.search(/^\{/m)));
    const one = await kiln('tasks', 'run', 'fan', 'square', 'ok', '--map-index', '2', '--json');
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^squaring 3 at map index 2$/m);
    expect(jsonOf(one.stdout)).toMatchObject({ taskId: 'square', mapIndex: 2, outcome: 'success', value: 9 });
    expect(jsonOf((await kiln('tasks', 'run', 'fan', 'total', 'ok', '--json')).stdout)).toMatchObject({ mapIndex: -1, outcome: 'success', value: 14 });
    expect((await kiln('tasks', 'run', 'fan', 'square', 'ok')).code).toBe(2);
  });

  it('tasks mark: a mapped task needs --map-index and marks that one instance only', async () => {
    const none = await kiln('tasks', 'mark', 'fan', 'bad', 'square', 'success');
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/mapped.*0\.\.2/)]);
    const dry = await kiln('tasks', 'mark', 'fan', 'bad', 'square', 'success', '--map-index', '1', '--dry-run');
    expect(dry.stdout).toBe('would mark square[1] success; run bad would be failed\n');
    const marked = await kiln('tasks', 'mark', 'fan', 'bad', 'square', 'success', '--map-index', '1');
    expect([marked.code, marked.stdout]).toEqual([0, 'marked square[1] success; run bad is failed\n']);
    expect((await kiln('runs', 'show', 'fan', 'bad')).stdout).toMatch(/^square \[0\.\.2\]\s+3 success\s/m);
    expect((await kiln('tasks', 'mark', 'fan', 'bad', 'square', 'success', '--map-index', '3')).code).toBe(2);
  });

  it('tasks clear: --map-index clears one instance (with --downstream, whole downstream tasks), and only it runs again', async () => {
    const dryAll = await kiln('tasks', 'clear', 'fan', 'ok', 'square', '--dry-run');
    expect(dryAll.stdout).toBe('would clear square [0..2] (3 instances)\n');
    const json = await kiln('tasks', 'clear', 'fan', 'ok', 'square', '--map-index', '0', '--downstream', '--json');
    expect(JSON.parse(json.stdout)).toEqual({ cleared: ['square[0]', 'total'], skipped: [], conflicts: [] });
    expect((await kiln('tasks', 'clear', 'fan', 'ok', '--map-index', '0')).code).toBe(2);
    expect((await kiln('tasks', 'clear', 'fan', 'ok', 'square', '--map-index', '9')).code).toBe(2);

    const scheduler = startScheduler(['--exit-when-idle'], { cwd, env });
    expect((await exitOf(scheduler)).code, scheduler.output()).toBe(0);
    await withStore(env.KILN_DATABASE_URL, async (store) => {
      expect((await store.getRun('fan', 'ok'))?.state).toBe('success');
      const tis = (await store.getTaskInstances('fan', 'ok')).map((t) => `${t.taskId}[${t.mapIndex}]:${t.state}:${t.tryNumber}`);
      expect(tis).toEqual(['list[-1]:success:1', 'square[0]:success:2', 'square[1]:success:1', 'square[2]:success:1', 'total[-1]:success:2']);
    });
    const log = await kiln('tasks', 'logs', 'fan', 'ok', 'square', '--map-index', '0', '--try', '2');
    expect(log.stdout).toMatch(/squaring 1 at map index 0/);
  });
});
