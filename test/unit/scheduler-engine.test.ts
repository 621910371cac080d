/**
 * The run engine's side of the scheduler service: runs changed by another process
 * (tasks clear / mark), runs gone stale, zombies and tries stuck in queued. The invariant
 * under test: a task instance is never handed to the executor again while a try of it
 * that we gave up on may still run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dag, type DagBuilder } from '../../src/dag/authoring.js';
import { serializeDag } from '../../src/dag/serialize.js';
import type { DagOptions } from '../../src/dag/types.js';
import type { Executor, ExecutorEvent } from '../../src/executor/types.js';
import type { TaskWork } from '../../src/protocol/messages.js';
import { clearTasks, loadRun, markTask } from '../../src/scheduler/operations.js';
import { RunEngine } from '../../src/scheduler/run-engine.js';
import { initialTaskInstances, RunState } from '../../src/scheduler/run-state.js';
import { createStore } from '../../src/store/index.js';
import type { RunRow, Store } from '../../src/store/types.js';
import { FakeExecutor, type ScriptedOutcome } from '../helpers/fake-executor.js';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

/** The fake executor records cancellations itself. */
const SpyExecutor = FakeExecutor;
type SpyExecutor = FakeExecutor;

async function setup(options: Omit<DagOptions, 'id'>, build: (d: DagBuilder) => void, script: (w: TaskWork) => ScriptedOutcome, executorFor?: (onEvent: (e: ExecutorEvent) => void) => Executor) {
  store = await createStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kiln-sched-engine-')), 'kiln.db')}`);
  await store.migrate();
  const serialized = serializeDag(dag({ id: 'd', ...options }, build));
  await store.upsertDag({ dagId: 'd', file: '/dev/null', version: 'v1', serialized });
  const stale: string[] = [];
  // The executor and the engine refer to each other: events go through this late binding.
  const ref: { engine?: RunEngine } = {};
  const onEvent = (e: ExecutorEvent) => ref.engine!.onExecutorEvent(e);
  const executor = executorFor?.(onEvent) ?? new SpyExecutor({ parallelism: 8, onEvent }, script);
  const engine = (ref.engine = new RunEngine({ store, executor, schedulerId: 'me', logsFolder: '/tmp/kiln-engine-logs', defaultIsolation: 'thread', onRunStale: (r) => stale.push(r.run.runId) }));
  const row: RunRow = { dagId: 'd', runId: 'r1', runType: 'manual', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, state: 'queued', params: {}, dagVersion: 'v1', queuedAt: Date.now(), startedAt: null, endedAt: null, claimedBy: 'me' };
  const tis = initialTaskInstances('d', 'r1', serialized.tasks);
  await store.createRun(row, tis);
  const run = new RunState(row, serialized, '/dev/null', tis);
  const s = store;
  const ti = async (taskId: string) => (await s.getTaskInstance({ dagId: 'd', runId: 'r1', taskId }))!;
  return { engine, executor, store: s, run, stale, ti };
}

/** Polls (event-loop turns, no sleeps) until `check` holds or 5 s pass. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const holdOn = (...ids: string[]) => (w: TaskWork): ScriptedOutcome => (ids.includes(`${w.taskId}/${w.tryNumber}`) ? { outcome: 'hold' } : { outcome: 'success' });
const key = (taskId: string, tryNumber: number) => `d/r1/${taskId}/${tryNumber}`;

describe('RunEngine under the scheduler service', () => {
  it('tasks clear on a run it drives: the cleared tasks run again with a new try, the running one is left alone', async () => {
    const { engine, executor, store, run, ti } = await setup({}, (d) => {
      d.chain(d.task('a', () => 1), d.task('b', () => 1));
      d.task('slow', () => 1);
    }, holdOn('slow/1'));
    engine.adopt(run);
    await until(async () => (await ti('b')).state === 'success' && (await ti('slow')).state === 'running', 'a and b done, slow running');
    const result = await clearTasks(store, await loadRun(store, 'd', 'r1'), { taskId: 'a', downstream: true });
    expect(result).toEqual({ cleared: ['a', 'b'], skipped: [], conflicts: [] });
    expect((await store.getRun('d', 'r1'))!.state).toBe('queued');
    engine.refresh('d', 'r1');
    await until(async () => (await ti('b')).tryNumber === 2 && (await ti('b')).state === 'success', 'b ran again');
    (executor as FakeExecutor).release(key('slow', 1));
    const done = await engine.whenRunFinished(run);
    expect(done.run.state).toBe('success');
    expect((executor as FakeExecutor).submitted.map((w) => `${w.taskId}/${w.tryNumber}`)).toEqual(['a/1', 'slow/1', 'b/1', 'a/2', 'b/2']);
    expect((await store.getRun('d', 'r1'))!.state).toBe('success');
  });

  it('tasks mark on a running try: the scheduler cancels it, records the mark, and decides downstream', async () => {
    const { engine, executor, store, run, ti } = await setup({}, (d) => d.chain(d.task('slow', () => 1), d.task('after', () => 1)), holdOn('slow/1'));
    const spy = executor as SpyExecutor;
    engine.adopt(run);
    await until(async () => (await ti('slow')).state === 'running', 'slow running');
    await markTask(store, await loadRun(store, 'd', 'r1'), 'slow', 'failed');
    engine.refresh('d', 'r1');
    const done = await engine.whenRunFinished(run);
    expect(done.run.state).toBe('failed');
    expect(spy.cancelled).toEqual([key('slow', 1)]);
    expect((await ti('slow')).state).toBe('failed');
    expect((await ti('after')).state).toBe('upstream_failed');
    // The cancelled try holds its slot until the executor reports its end.
    expect(engine.activeTryCount).toBe(1);
    spy.release(key('slow', 1));
    await until(() => engine.activeTryCount === 0, 'the cancelled try to end');
  });

  it('a cancelled try counts against its run\'s maxActiveTasks until it has ended', async () => {
    const { engine, executor, store, run, ti } = await setup({ maxActiveTasks: 1 }, (d) => {
      d.task('slow', () => 1);
      d.task('next', () => 1);
    }, holdOn('slow/1'));
    const spy = executor as SpyExecutor;
    engine.adopt(run);
    await until(async () => (await ti('slow')).state === 'running', 'slow running');
    await markTask(store, await loadRun(store, 'd', 'r1'), 'slow', 'success');
    engine.refresh('d', 'r1');
    await until(() => spy.cancelled.length === 1, 'the try of slow to be cancelled');
    await engine.whenIdle();
    // slow/1 still runs (the executor has not reported its end): next must wait.
    expect(spy.submitted.map((w) => w.taskId)).toEqual(['slow']);
    spy.release(key('slow', 1));
    expect((await engine.whenRunFinished(run)).run.state).toBe('success');
    expect(spy.submitted.map((w) => w.taskId)).toEqual(['slow', 'next']);
    expect(spy.maxRunning).toBe(1);
  });

  it('a run changed under it goes stale: its tries are cancelled and it stays draining until they end', async () => {
    const { engine, executor, store, run, stale } = await setup({}, (d) => {
      d.task('a', () => 1);
      d.task('b', () => 1);
    }, holdOn('a/1', 'b/1'));
    const spy = executor as SpyExecutor;
    engine.adopt(run);
    await until(async () => (await store.getTaskInstances('d', 'r1')).every((t) => t.state === 'running'), 'both running');
    // Someone marks 'a' behind the engine's back, and the engine never hears of it...
    await markTask(store, await loadRun(store, 'd', 'r1'), 'a', 'success');
    // ...until its own compare-and-set for 'a' fails.
    spy.release(key('a', 1), { outcome: 'failed', message: 'late' });
    await until(() => stale.length === 1, 'the run to go stale');
    expect(engine.hasRun('d', 'r1')).toBe(false);
    expect(spy.cancelled).toEqual([key('b', 1)]);
    expect(engine.isDraining('d', 'r1')).toBe(true);
    spy.release(key('b', 1));
    await until(() => !engine.isDraining('d', 'r1'), 'the cancelled try to end');
    expect((await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'a' }))!.state).toBe('success');
  });

  it('a zombie is failed into a retry with the reason recorded; the retry waits until the lost try has ended', async () => {
    const { engine, executor, run, ti } = await setup({ defaults: { retryDelay: 0 } }, (d) => d.task('z', () => 1, { retries: 1 }), holdOn('z/1'));
    const spy = executor as SpyExecutor;
    engine.adopt(run);
    await until(async () => (await ti('z')).state === 'running', 'z running');
    expect(engine.expireTry({ dagId: 'd', runId: 'r1', taskId: 'z', tryNumber: 1 }, 'zombie: no heartbeat for 61s')).toBe(true);
    await until(async () => (await ti('z')).error === 'TASK_ZOMBIE: zombie: no heartbeat for 61s', 'the reason to be recorded');
    expect(['up_for_retry', 'scheduled']).toContain((await ti('z')).state);
    expect(spy.cancelled).toEqual([key('z', 1)]);
    await engine.whenIdle();
    expect(spy.submitted).toHaveLength(1);
    spy.release(key('z', 1), { outcome: 'failed', message: 'killed' });
    const done = await engine.whenRunFinished(run);
    expect(done.run.state).toBe('success');
    expect(spy.submitted.map((w) => w.tryNumber)).toEqual([1, 2]);
    // A stale zombie report (an older try) changes nothing.
    expect(engine.expireTry({ dagId: 'd', runId: 'r1', taskId: 'z', tryNumber: 1 }, 'late')).toBe(false);
  });

  it('a try stuck in queued is queued again with a new try number, without using up a retry', async () => {
    const submitted: TaskWork[] = [];
    const cancelled: string[] = [];
    let emit!: (e: ExecutorEvent) => void;
    // Accepts work and never starts it.
    const silent = (onEvent: (e: ExecutorEvent) => void): Executor => {
      emit = onEvent;
      return { name: 'silent', start: async () => {}, submit: (w) => void submitted.push(w), freeSlots: () => 4, cancel: (k) => void cancelled.push(k), stop: async () => {} };
    };
    const { engine, run, ti } = await setup({}, (d) => d.task('q', () => 1), () => ({ outcome: 'success' }), silent);
    engine.adopt(run);
    await until(async () => (await ti('q')).state === 'queued', 'q queued');
    expect(engine.requeueTry({ dagId: 'd', runId: 'r1', taskId: 'q', tryNumber: 1 }, 'queued for 601s')).toBe(true);
    await engine.whenIdle();
    expect(cancelled).toEqual([key('q', 1)]);
    expect(submitted).toHaveLength(1);
    // The executor reports the cancelled try's end: now it may be queued again.
    emit({ type: 'finished', key: key('q', 1), outcome: 'failed', noRetry: true, error: { name: 'KilnError', message: 'cancelled' }, exitCode: null, signal: null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 0, at: Date.now() });
    await until(() => submitted.length === 2, 'the second try');
    expect(submitted[1]!.tryNumber).toBe(2);
    const row = await ti('q');
    expect([row.state, row.tryNumber, row.maxTries]).toEqual(['queued', 2, 2]);
  });
});
