/**
 * A scheduler SIGKILLed after a failure and before its callback finished: the owed callback
 * is in the database (written with the failure), and the scheduler that comes next runs it.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, readRecords, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const databases = await databasesUnderTest('callback_takeover');
afterAll(async () => Promise.all(databases.map((d) => d.cleanup())));

describe.each(databases)('owed callbacks survive a SIGKILLed scheduler, on $name', (db) => {
  it('the next scheduler runs the callback the dead one owed', async () => {
    const cwd = scratchProject('kiln-callback-takeover-');
    const out = join(cwd, 'callback.jsonl');
    const url = db.url(cwd);
    const env = { KILN_DAGS_FOLDER: join(REPO, 'test/fixtures/callbacks/takeover'), KILN_DATABASE_URL: url, KILN_SCHEDULER_INTERVAL: '100ms' };
    const trigger = await runKiln(['dags', 'trigger', 'pager', '--params', JSON.stringify({ out, callbackMs: 3000 })], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);

    const first = startScheduler(['--executor', 'thread', '--takeover-after', '1s'], { cwd, env });
    await until(() => readRecords<{ event: string }>(out).some((r) => r.event === 'start'), 'the failure callback to start', 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const owed = await withStore(url, async (store) => {
      const [run] = await store.listRuns({ dagId: 'pager' });
      return { run, callbacks: await store.listCallbacks('pager', run!.runId) };
    });
    expect(owed.run?.state).toBe('failed');
    expect(owed.callbacks).toMatchObject([{ taskId: 'load', kind: 'failure', reason: 'exception', tryNumber: 1 }]);

    const second = startScheduler(['--executor', 'thread', '--takeover-after', '1s', '--exit-when-idle'], { cwd, env });
    const { code } = await exitOf(second, 60_000);
    expect(code, second.output()).toBe(0);
    expect(second.output()).toMatch(/running callback onFailure of task load .* owed since/);
    const records = readRecords<{ event: string; pid: number; reason: string }>(out);
    // Cut once by the kill, then run to its end by the successor: at least once, never lost.
    expect(records.map((r) => r.event)).toEqual(['start', 'start', 'end']);
    expect(records.every((r) => r.event === 'end' || r.reason === 'exception')).toBe(true);
    expect(records[2]!.pid).toBe(second.pid);
    await withStore(url, async (store) => expect(await store.listCallbacks('pager', owed.run!.runId)).toEqual([]));
  });
});
