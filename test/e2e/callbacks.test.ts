/**
 * Callbacks end to end through `kiln dags test`, on both databases and both pooled
 * isolations: every way a try can end fires its callback exactly once, with the reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';

const DAG = join(REPO, 'test/fixtures/callbacks/callbacks.ts');
const databases = await databasesUnderTest('callbacks');
afterAll(async () => Promise.all(databases.map((d) => d.cleanup())));

interface Fired {
  kind: string;
  taskId: string | null;
  tryNumber: number | null;
  state: string;
  reason: string | null;
  signal: string | null;
  inWorker: boolean;
}

describe.each(databases.flatMap((db) => (['thread', 'process'] as const).map((isolation) => ({ db, isolation }))))('callbacks, $isolation on $db.name', ({ db, isolation }) => {
  it('fire exactly once for each way a try ends, with the reason', async () => {
    const cwd = scratchProject('kiln-callbacks-');
    const out = join(cwd, 'fired.jsonl');
    const res = await runKiln(['dags', 'test', DAG, '--executor', isolation, '--json', '--params', JSON.stringify({ out })], {
      cwd, env: { KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '4' }, timeoutMs: 90_000,
    });
    expect(res.code, res.stderr).toBe(1);
    const report = JSON.parse(res.stdout) as { runId: string; failureReason: string; tasks: Array<{ taskId: string; state: string; tries: number }> };
    expect(report.failureReason).toBe('task_failed');
    const fired = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Fired);
    const summary = fired.map((f) => `${f.taskId ?? '@dag'} ${f.kind} try=${f.tryNumber ?? '-'} ${f.state} ${f.reason ?? '-'}`).sort();
    expect(summary).toEqual([
      '@dag failure try=- failed task_failed',
      'flaky failure try=3 failed exception',
      'flaky retry try=1 up_for_retry exception',
      'flaky retry try=2 up_for_retry exception',
      'hog failure try=1 failed out_of_memory',
      'killed failure try=1 failed signal',
      'ok success try=1 success -',
      'skipper skipped try=1 skipped -',
      'slow failure try=1 failed timeout',
    ]);
    expect(fired.find((f) => f.taskId === 'killed')?.signal).toBe('SIGKILL');
    // A callback runs in a worker of the task's isolation, never in kiln's own process.
    expect(fired.filter((f) => !f.inWorker)).toEqual([]);
    // Nothing is left owed once `dags test` returns.
    const show = await runKiln(['runs', 'show', 'callbacks', report.runId, '--json'], { cwd, env: { KILN_DATABASE_URL: db.url(cwd) } });
    expect(JSON.parse(show.stdout).callbacks).toEqual([]);
    expect(JSON.parse(show.stdout).run.failureReason).toBe('task_failed');
  });

  it('dagrunTimeout stops a sleeping task, skips what is left, fails the run timed_out and fires the DAG onFailure once', async () => {
    const cwd = scratchProject('kiln-run-timeout-');
    const out = join(cwd, 'fired.jsonl');
    const started = Date.now();
    const res = await runKiln(['dags', 'test', join(REPO, 'test/fixtures/callbacks/deadline.ts'), '--executor', isolation, '--json', '--params', JSON.stringify({ out })], {
      cwd, env: { KILN_DATABASE_URL: db.url(cwd) }, timeoutMs: 50_000,
    });
    expect(res.code, res.stderr).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000); // not the sleeper's 60 s
    const report = JSON.parse(res.stdout) as { failureReason: string; tasks: Array<{ taskId: string; state: string; error: string | null }> };
    expect(report.failureReason).toBe('timed_out');
    expect(Object.fromEntries(report.tasks.map((t) => [t.taskId, t.state]))).toEqual({ quick: 'success', sleeper: 'skipped', never: 'skipped' });
    expect(report.tasks.find((t) => t.taskId === 'sleeper')?.error).toMatch(/dagrunTimeout/);
    expect(readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ kind: 'failure', reason: 'timed_out', state: 'failed' }]);
  });
});

describe('kiln tasks logs --callbacks', () => {
  it("prints a callback's own log, and names a callback that threw", async () => {
    const cwd = scratchProject('kiln-callback-logs-');
    const res = await runKiln(['dags', 'test', join(REPO, 'test/fixtures/callbacks/loud.ts'), '--json'], { cwd });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/callback onSuccess of task noisy \(run \S+, DAG loud, try 1\) failed: TASK_FAILED: the pager is down \(log: .*1\.success-callback\.log\)/);
    const { runId } = JSON.parse(res.stdout) as { runId: string };
    const logs = await runKiln(['tasks', 'logs', 'loud', runId, 'noisy', '--callbacks'], { cwd });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/--- success callback, try 1 \(.*\)\n.*INFO {2}paging the team about noisy/);
    expect(logs.stdout).toMatch(/Error: the pager is down/);
    const dagLogs = await runKiln(['tasks', 'logs', 'loud', runId, '--callbacks'], { cwd });
    expect(dagLogs.stdout).toMatch(/--- success callback \(.*@dag.*\)\n.*INFO {2}run .* of loud succeeded/);
    const noTask = await runKiln(['tasks', 'logs', 'loud', runId], { cwd });
    expect(noTask.code).toBe(2);
    expect(noTask.stderr).toMatch(/missing <task-id>/);
  });
});
