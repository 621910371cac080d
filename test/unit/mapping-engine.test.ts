/**
 * Task mapping in the run engine (FakeExecutor on a real SQLite store): expansion, the
 * collected results, empty and bad maps, per-instance retries, limits, cross products,
 * maps over maps, and a shrink after a clear.
 */
import { describe, expect, it } from 'vitest';
import type { TaskWork } from '../../src/protocol/messages.js';
import { clearTasks, loadRun } from '../../src/scheduler/operations.js';
import { RunEngine } from '../../src/scheduler/run-engine.js';
import { loadRunState } from '../../src/scheduler/run-loading.js';
import { FakeExecutor } from '../helpers/fake-executor.js';
import { ok, setup } from '../helpers/engine-harness.js';
import type { ScriptedOutcome } from '../helpers/fake-executor.js';

const states = async (store: Awaited<ReturnType<typeof setup>>['store']) =>
  (await store.getTaskInstances('d', 'r1')).map((t) => `${t.taskId}${t.mapIndex >= 0 ? `[${t.mapIndex}]` : ''}:${t.state}:${t.tryNumber}`);

describe('task mapping in the run engine', () => {
  it('expands over an upstream\'s list: one instance per item with ctx.item, results collected in map-index order', async () => {
    let reduced: unknown;
    const { engine, executor, store, newRun } = await setup({}, (d) => {
      const list = d.task('list', () => 1);
      const sq = d.map('square', () => 1, { over: list });
      d.task('total', () => 1, { upstream: [sq] });
    }, async (w: TaskWork): Promise<ScriptedOutcome> => {
      if (w.taskId === 'list') return { outcome: 'success', value: [3, 1, 2] };
      // Finish in reverse order: the collected results still follow the map index.
      if (w.taskId === 'square') {
        await new Promise((r) => setTimeout(r, 30 - (w.mapIndex ?? 0) * 10));
        return { outcome: 'success', value: (w.item as number) ** 2 };
      }
      reduced = await engine.taskApi.xcom('d', 'r1', 'square');
      return ok;
    });
    const run = await newRun();
    engine.adopt(run);
    expect((await engine.whenRunFinished(run)).run.state).toBe('success');
    expect(reduced).toEqual([9, 1, 4]);
    const square = executor.submitted.filter((w) => w.taskId === 'square');
    expect(square.map((w) => [w.mapIndex, w.item, w.key])).toEqual([[0, 3, 'd/r1/square[0]/1'], [1, 1, 'd/r1/square[1]/1'], [2, 2, 'd/r1/square[2]/1']]);
    expect(await states(store)).toEqual(['list:success:1', 'square[0]:success:1', 'square[1]:success:1', 'square[2]:success:1', 'total:success:1']);
    expect((await store.getTaskXcoms('d', 'r1', 'square')).map((x) => x.value)).toEqual([9, 1, 4]);
    // Read back from the store once the run is no longer held.
    expect(await engine.taskApi.xcom('d', 'r1', 'square')).toEqual([9, 1, 4]);
  });

  it('an empty list skips the map (and its all_success downstream); a string fails the upstream\'s try', async () => {
    const { engine, store, newRun } = await setup({ defaults: { retryDelay: 0 } }, (d) => {
      const empty = d.task('empty', () => 1);
      d.task('after_empty', () => 1, { upstream: [d.map('m_empty', () => 1, { over: empty })] });
      const text = d.task('text', () => 1, { retries: 1 });
      d.map('m_text', () => 1, { over: text });
    }, (w) => (w.taskId === 'empty' ? { outcome: 'success', value: [] } : w.taskId === 'text' ? { outcome: 'success', value: 'abc' } : ok));
    const run = await newRun();
    engine.adopt(run);
    expect((await engine.whenRunFinished(run)).run.state).toBe('failed');
    const tis = Object.fromEntries((await store.getTaskInstances('d', 'r1')).map((t) => [`${t.taskId}${t.mapIndex}`, t]));
    expect(tis['m_empty-1']).toMatchObject({ state: 'skipped' });
    expect(tis['after_empty-1']).toMatchObject({ state: 'skipped' });
    // The upstream's try failed (and was retried: it is an ordinary failure), the map never expanded.
    expect(tis['text-1']).toMatchObject({ state: 'failed', tryNumber: 2 });
    expect(tis['text-1']!.error).toMatch(/MAP_SOURCE: .*must be an array or an object; got a string \("abc"\)/);
    expect(tis['m_text-1']).toMatchObject({ state: 'upstream_failed' });
  });

  it('a list longer than maxMapLength fails the upstream, naming the length', async () => {
    const { engine, store, newRun } = await setup({ maxMapLength: 3 }, (d) => {
      d.map('m', () => 1, { over: d.task('big', () => 1) });
    }, (w) => (w.taskId === 'big' ? { outcome: 'success', value: [1, 2, 3, 4] } : ok));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    const big = await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'big' });
    expect(big!.error).toMatch(/has 4 items, more than maxMapLength \(3\)/);
  });

  it('only the failing instance retries; downstream trigger rules count every instance', async () => {
    const { engine, executor, store, newRun } = await setup({ defaults: { retryDelay: 0 } }, (d) => {
      const m = d.map('m', () => 1, { over: ['a', 'b', 'c'], retries: 1 });
      d.task('all_ok', () => 1, { upstream: [m] });
    }, (w) => (w.mapIndex === 1 && w.tryNumber === 1 ? { outcome: 'failed', message: 'flaky' } : ok));
    const run = await newRun();
    engine.adopt(run);
    expect((await engine.whenRunFinished(run)).run.state).toBe('success');
    expect(executor.submitted.filter((w) => w.taskId === 'm').map((w) => `${w.mapIndex}/${w.tryNumber}`).sort()).toEqual(['0/1', '1/1', '1/2', '2/1']);
    expect(await states(store)).toEqual(['all_ok:success:1', 'm[0]:success:1', 'm[1]:success:2', 'm[2]:success:1']);
  });

  it('a failed instance with no retries left fails the downstream (upstream_failed) and the run', async () => {
    const { engine, store, newRun } = await setup({}, (d) => {
      d.task('after', () => 1, { upstream: [d.map('m', () => 1, { over: [1, 2, 3] })] });
      d.task('done', () => 1, { upstream: ['m'], triggerRule: 'all_done' });
    }, (w) => (w.mapIndex === 2 ? { outcome: 'failed' } : ok));
    const run = await newRun();
    engine.adopt(run);
    expect((await engine.whenRunFinished(run)).run.state).toBe('failed');
    expect(await states(store)).toEqual(['after:upstream_failed:0', 'done:success:1', 'm[0]:success:1', 'm[1]:success:1', 'm[2]:failed:1']);
  });

  it('maxActiveTisPerRun is never exceeded', async () => {
    const { engine, executor, newRun } = await setup({ maxActiveTasks: 16 }, (d) => {
      d.map('m', () => 1, { over: Array.from({ length: 9 }, (_, i) => i), maxActiveTisPerRun: 2 });
    }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return ok;
    }, { parallelism: 8 });
    const run = await newRun();
    engine.adopt(run);
    expect((await engine.whenRunFinished(run)).run.state).toBe('success');
    expect(executor.submitted).toHaveLength(9);
    expect(executor.maxRunning).toBe(2);
  });

  it('a failed instance owes its onFailure callback once, tied to its own write, with its map index', async () => {
    const { engine, executor, store, newRun } = await setup({}, (d) => {
      d.map('m', () => 1, { over: ['a', 'b', 'c'], onFailure: () => undefined });
    }, (w) => (w.callback ? ok : w.mapIndex === 1 ? { outcome: 'failed', message: 'boom' } : ok));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    await engine.whenCallbacksDone();
    const callbacks = executor.submitted.filter((w) => w.callback);
    expect(callbacks.map((w) => [w.taskId, w.mapIndex, w.callback!.kind, w.key])).toEqual([['m', 1, 'failure', 'callback:d/r1/m[1]/1/failure']]);
    expect(callbacks[0]!.logFile).toMatch(/\/m\/1\/1\.failure-callback\.log$/);
    expect(await store.listCallbacks('d', 'r1')).toEqual([]); // ran, and its row is gone
  });

  it('maxActiveTisPerDag holds across the runs of the DAG', async () => {
    const { engine, executor, newRun } = await setup({ maxActiveTasks: 16 }, (d) => {
      d.map('m', () => 1, { over: [1, 2, 3, 4, 5], maxActiveTisPerDag: 3 });
    }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return ok;
    }, { parallelism: 10 });
    const runs = [await newRun('r1'), await newRun('r2')];
    for (const run of runs) engine.adopt(run);
    for (const run of runs) expect((await engine.whenRunFinished(run)).run.state).toBe('success');
    expect(executor.submitted).toHaveLength(10);
    expect(executor.maxRunning).toBe(3);
  });

  it('a 3 x 2 cross product gives 6 instances, the last name varying fastest', async () => {
    const { engine, executor, newRun } = await setup({}, (d) => {
      const files = d.task('files', () => 1);
      d.map('convert', () => 1, { over: { file: files, format: ['png', 'jpg'] } });
    }, (w) => (w.taskId === 'files' ? { outcome: 'success', value: ['a', 'b', 'c'] } : ok));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    expect(executor.submitted.filter((w) => w.taskId === 'convert').map((w) => [w.mapIndex, w.item])).toEqual([
      [0, { file: 'a', format: 'png' }], [1, { file: 'a', format: 'jpg' }], [2, { file: 'b', format: 'png' }],
      [3, { file: 'b', format: 'jpg' }], [4, { file: 'c', format: 'png' }], [5, { file: 'c', format: 'jpg' }],
    ]);
  });

  it('mapping over a mapped task maps over its collected results, one instance per upstream instance', async () => {
    const { engine, executor, newRun } = await setup({}, (d) => {
      const first = d.map('first', () => 1, { over: [1, 2, 3] });
      d.map('second', () => 1, { over: first });
    }, (w) => ({ outcome: 'success', value: w.taskId === 'first' ? (w.item as number) * 10 : undefined }));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    expect(executor.submitted.filter((w) => w.taskId === 'second').map((w) => [w.mapIndex, w.item])).toEqual([[0, 10], [1, 20], [2, 30]]);
  });

  it('a cleared upstream that now returns fewer items marks the surplus instances removed, and the run succeeds', async () => {
    let calls = 0;
    const { engine, store, newRun } = await setup({}, (d) => {
      const list = d.task('list', () => 1);
      d.task('after', () => 1, { upstream: [d.map('m', () => 1, { over: list })] });
    }, (w) => (w.taskId === 'list' ? { outcome: 'success', value: ++calls === 1 ? ['x', 'y', 'z'] : ['x', 'y'] } : ok));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    await clearTasks(store, await loadRun(store, 'd', 'r1'), { taskId: 'list', downstream: true });
    const again = (await import('../../src/scheduler/run-loading.js')).loadRunState;
    const row = (await store.getRun('d', 'r1'))!;
    const reloaded = await again(store, row, run.dag, '/dev/null');
    engine.adopt(reloaded);
    expect((await engine.whenRunFinished(reloaded)).run.state).toBe('success');
    expect(await states(store)).toEqual(['after:success:2', 'list:success:2', 'm[0]:success:2', 'm[1]:success:2', 'm[2]:removed:1']);
  });

  it('a scheduler that adopts a run with an expanded map reads the items back from the store (nothing in memory) and runs each instance with its own item', async () => {
    const { engine, executor, store, newRun } = await setup({}, (d) => {
      d.map('m', () => 1, { over: d.task('list', () => 1) });
    }, (w) => (w.taskId === 'list' ? { outcome: 'success', value: ['p', 'q', 'r'] } : { outcome: 'hold' }));
    const run = await newRun();
    engine.adopt(run);
    const { until } = await import('../fixtures/scheduler/harness.js');
    await until(() => executor.heldKeys().length === 3 || null, 'the three instances to start');
    await engine.whenIdle();
    engine.freeze();
    engine.detach(); // as if this scheduler died: its tries are lost with it
    // A second engine, as a restarted scheduler: it knows only what the store holds.
    const late: { engine?: RunEngine } = {};
    const second = new FakeExecutor({ parallelism: 8, onEvent: (e) => late.engine!.onExecutorEvent(e) }, () => ok);
    const next = (late.engine = new RunEngine({ store, executor: second, schedulerId: 'second', logsFolder: '/tmp/kiln-engine-logs', defaultIsolation: 'thread' }));
    const reloaded = await loadRunState(store, (await store.getRun('d', 'r1'))!, run.dag, '/dev/null');
    expect(reloaded.xcoms.size).toBe(0);
    next.adopt(reloaded);
    expect((await next.whenRunFinished(reloaded)).run.state).toBe('success');
    expect(second.submitted.map((w) => [w.mapIndex, w.item, w.tryNumber])).toEqual([[0, 'p', 2], [1, 'q', 2], [2, 'r', 2]]);
    next.close();
  });
});
