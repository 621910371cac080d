import { describe, expect, it } from 'vitest';
import { failureReason } from '../../src/protocol/failure-reason.js';
import { taskCallbackFor } from '../../src/scheduler/callbacks.js';
import type { TiRow } from '../../src/store/types.js';
import { initialTaskInstances } from '../../src/scheduler/run-state.js';
import { ok, setup } from '../helpers/engine-harness.js';
import type { TaskWork } from '../../src/protocol/messages.js';

const kinds = (works: TaskWork[]) => works.filter((w) => w.callback).map((w) => `${w.taskId || '@dag'}:${w.callback!.kind}:${w.callback!.reason ?? '-'}`);
const until = async (check: () => boolean | Promise<boolean>, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('failureReason', () => {
  it.each([
    [{ error: { code: 'TASK_TIMEOUT', message: 'timed out' }, exitCode: null, signal: null }, 'timeout'],
    [{ error: { code: 'TASK_HEARTBEAT_TIMEOUT', message: '' }, exitCode: null, signal: null }, 'heartbeat'],
    [{ error: { code: 'TASK_ZOMBIE', message: '' }, exitCode: null, signal: null }, 'heartbeat'],
    [{ error: { code: 'TASK_MEMORY_LIMIT', message: '' }, exitCode: null, signal: 'SIGKILL' }, 'out_of_memory'],
    [{ error: { code: 'WORKER_EXITED', message: 'the worker thread ran out of memory: JavaScript heap out of memory' }, exitCode: null, signal: null }, 'out_of_memory'],
    [{ error: { code: 'WORKER_EXITED', message: 'the worker process was killed by SIGKILL, not sent by kiln' }, exitCode: null, signal: 'SIGKILL' }, 'signal'],
    [{ error: { code: 'WORKER_EXITED', message: 'exited with code 3' }, exitCode: 3, signal: null }, 'exit_code'],
    [{ error: { code: 'WORKER_EXITED', message: 'went away' }, exitCode: null, signal: null }, 'worker_lost'],
    [{ error: { code: 'TASK_FAILED', message: 'boom' }, exitCode: null, signal: null }, 'exception'],
    [{ error: { code: 'TASK_CANCELLED', message: '' }, exitCode: null, signal: null }, 'cancelled'],
  ] as const)('%j -> %s', (facts, reason) => {
    expect(failureReason(facts)).toBe(reason);
  });
});

describe('taskCallbackFor', () => {
  const [base] = initialTaskInstances('d', 'r', [{ taskId: 't', retries: 0, pool: 'p', poolSlots: 1, priorityWeight: 1, isolation: null } as never]) as [TiRow];
  const running: TiRow = { ...base, state: 'running', tryNumber: 1 };
  const all = { callbacks: ['success', 'failure', 'retry', 'skipped'] as const };
  it('names the callback each end state owes, only when the task has it', () => {
    expect(taskCallbackFor({ callbacks: [...all.callbacks] }, running, { ...running, state: 'success' }, false)).toBe('success');
    expect(taskCallbackFor({ callbacks: [...all.callbacks] }, running, { ...running, state: 'failed' }, false)).toBe('failure');
    expect(taskCallbackFor({ callbacks: [...all.callbacks] }, running, { ...running, state: 'up_for_retry' }, false)).toBe('retry');
    expect(taskCallbackFor({ callbacks: [...all.callbacks] }, running, { ...running, state: 'skipped' }, true)).toBe('skipped');
    // Skipped by a trigger rule, not by the task itself: no onSkipped.
    expect(taskCallbackFor({ callbacks: [...all.callbacks] }, running, { ...running, state: 'skipped' }, false)).toBeNull();
    expect(taskCallbackFor({ callbacks: ['success'] }, running, { ...running, state: 'failed' }, false)).toBeNull();
    // A DAG version serialized before callbacks existed has no list.
    expect(taskCallbackFor({}, running, { ...running, state: 'failed' }, false)).toBeNull();
  });
});

describe('RunEngine callbacks', () => {
  const hook = () => undefined;

  it('retries: 2 fires onRetry twice, then onFailure once, then the DAG onFailure once; every row is deleted after', async () => {
    const { engine, executor, store, newRun } = await setup({ onFailure: hook, defaults: { retryDelay: 0 } }, (d) => {
      d.task('flaky', () => 1, { retries: 2, onRetry: hook, onFailure: hook, onSuccess: hook });
    }, (w) => (w.callback ? ok : { outcome: 'failed', message: `try ${w.tryNumber}` }));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    await engine.whenCallbacksDone();
    expect(kinds(executor.submitted)).toEqual(['flaky:retry:exception', 'flaky:retry:exception', 'flaky:failure:exception', '@dag:failure:task_failed']);
    expect(executor.submitted.filter((w) => w.callback).map((w) => w.tryNumber)).toEqual([1, 2, 3, 0]);
    expect(await store.listCallbacks('d', 'r1')).toEqual([]);
    expect((await store.getRun('d', 'r1'))?.failureReason).toBe('task_failed');
  });

  it('writes the owed callback with the state change, and deletes it only once it has run', async () => {
    const { engine, executor, store, newRun } = await setup({}, (d) => {
      d.task('t', () => 1, { onFailure: hook });
    }, (w) => (w.callback ? { outcome: 'hold' } : { outcome: 'failed', code: 'TASK_TIMEOUT', message: 'timed out after 10 ms' }));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    await until(() => executor.heldKeys().length === 1, 'the callback to start');
    const owed = await store.listCallbacks('d', 'r1');
    expect(owed).toMatchObject([{ id: 'd/r1/t/1/failure', taskId: 't', tryNumber: 1, kind: 'failure', state: 'failed', reason: 'timeout', owner: 'test', error: 'TASK_TIMEOUT: timed out after 10 ms' }]);
    expect((await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 't' }))?.state).toBe('failed');
    // Claimed again (a scheduler tick finds its own row): not run a second time.
    engine.runOwedCallbacks([{ row: owed[0]!, context: run }]);
    executor.release(executor.heldKeys()[0]!);
    await engine.whenCallbacksDone();
    engine.runOwedCallbacks([{ row: owed[0]!, context: run }]); // read before the delete committed
    await engine.whenIdle();
    expect(kinds(executor.submitted)).toEqual(['t:failure:timeout']);
    expect(await store.listCallbacks('d', 'r1')).toEqual([]);
  });

  it('a callback that throws is reported and changes no state', async () => {
    const failures: string[] = [];
    const { engine, store, newRun } = await setup({}, (d) => {
      d.task('t', () => 1, { onSuccess: hook });
    }, (w) => (w.callback ? { outcome: 'failed', message: 'callback blew up' } : ok), { onCallbackFailed: (row, error) => failures.push(`${row.id}: ${error}`) });
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    await engine.whenCallbacksDone();
    expect(failures).toEqual(['d/r1/t/1/success: callback blew up']);
    expect((await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 't' }))?.state).toBe('success');
    expect((await store.getRun('d', 'r1'))?.state).toBe('success');
    expect(await store.listCallbacks('d', 'r1')).toEqual([]);
  });

  it('a zombie fires onFailure once with reason heartbeat', async () => {
    const { engine, executor, newRun } = await setup({}, (d) => {
      d.task('z', () => 1, { onFailure: hook });
    }, (w) => (w.callback ? ok : { outcome: 'hold' }));
    const run = await newRun();
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 1, 'the try to start');
    expect(engine.expireTry({ dagId: 'd', runId: 'r1', taskId: 'z', tryNumber: 1 }, 'no heartbeat for 30s')).toBe(true);
    await engine.whenRunFinished(run);
    // The abandoned try ends late: nothing more fires.
    executor.release(executor.heldKeys()[0]!, { outcome: 'failed', code: 'TASK_CANCELLED' });
    await engine.whenCallbacksDone();
    expect(kinds(executor.submitted)).toEqual(['z:failure:heartbeat']);
  });

  it('dagrunTimeout cancels running tries, skips what is unfinished, fails the run timed_out and fires the DAG onFailure', async () => {
    const { engine, executor, store, newRun } = await setup({ dagrunTimeout: 150, onFailure: hook }, (d) => {
      d.task('done', () => 1);
      d.chain(d.task('sleeper', () => 1, { onFailure: hook }), d.task('after', () => 1));
    }, (w) => (w.callback || w.taskId === 'done' ? ok : { outcome: 'hold' }));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    await engine.whenCallbacksDone();
    expect(executor.cancelled).toEqual(['d/r1/sleeper/1']);
    const tis = Object.fromEntries((await store.getTaskInstances('d', 'r1')).map((t) => [t.taskId, t.state]));
    expect(tis).toEqual({ done: 'success', sleeper: 'skipped', after: 'skipped' });
    expect(await store.getRun('d', 'r1')).toMatchObject({ state: 'failed', failureReason: 'timed_out' });
    expect(kinds(executor.submitted)).toEqual(['@dag:failure:timed_out']);
  });
});
