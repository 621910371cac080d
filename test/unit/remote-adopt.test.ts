/**
 * The run engine's one hook for remote executors: adopting a run whose try a dead scheduler
 * left running, an executor with `cancelsForeignTries` cancels that try and the task
 * instance waits for its end before its next try starts (never two copies at once).
 */
import { describe, expect, it } from 'vitest';
import { RunState } from '../../src/scheduler/run-state.js';
import { ok, setup } from '../helpers/engine-harness.js';

async function adoptWithRunningTry(remote: boolean, adopts = false) {
  const h = await setup({}, (d) => d.chain(d.task('a', () => 1), d.task('b', () => 1)), () => ok);
  if (remote) Object.defineProperty(h.executor, 'cancelsForeignTries', { value: true });
  const taken: Array<{ key: string; started: boolean; tryNumber: number }> = [];
  if (adopts) Object.defineProperty(h.executor, 'adoptTry', { value: (w: { key: string; tryNumber: number }, s: { started: boolean }) => taken.push({ key: w.key, tryNumber: w.tryNumber, started: s.started }) });
  const run = await h.newRun();
  const [a] = await h.store.getTaskInstances('d', 'r1');
  const runningA = { ...a!, state: 'running' as const, tryNumber: 1, queuedBy: 'dead', startedAt: Date.now() };
  expect((await h.store.write({ tis: [{ row: runningA, expect: { tryNumber: 0, states: ['none'] } }] })).tis).toEqual([true]);
  const adopted = new RunState(run.run, h.serialized, '/dev/null', await h.store.getTaskInstances('d', 'r1'));
  h.engine.adopt(adopted);
  return { ...h, adopted, taken };
}

describe('RunEngine.adopt with an executor whose tries outlive their scheduler', () => {
  it('cancels the old try and starts the next one only after the old one reported its end', async () => {
    const { engine, executor, adopted } = await adoptWithRunningTry(true);
    await engine.whenIdle();
    expect(executor.cancelled).toEqual(['d/r1/a/1']);
    expect(executor.submitted).toEqual([]);
    engine.onExecutorEvent({
      type: 'finished', key: 'd/r1/a/1', outcome: 'failed', noRetry: true, error: { name: 'KilnError', code: 'TASK_CANCELLED', message: 'cancelled' },
      exitCode: null, signal: null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 1, at: Date.now(),
    });
    await engine.whenRunFinished(adopted);
    expect(executor.submitted.map((w) => `${w.taskId}#${w.tryNumber}`)).toEqual(['a#2', 'b#1']);
  });

  it('leaves a local executor alone: the old try died with its scheduler', async () => {
    const { engine, executor, adopted } = await adoptWithRunningTry(false);
    await engine.whenRunFinished(adopted);
    expect(executor.cancelled).toEqual([]);
    expect(executor.submitted.map((w) => `${w.taskId}#${w.tryNumber}`)).toEqual(['a#2', 'b#1']);
  });

  it('with adoptTry, takes the old try over: no cancel, no new try; its end (reported by the executor) is recorded as ours', async () => {
    const { engine, executor, store, adopted, taken } = await adoptWithRunningTry(true, true);
    await engine.whenIdle();
    expect(taken).toEqual([{ key: 'd/r1/a/1', tryNumber: 1, started: true }]);
    expect(executor.cancelled).toEqual([]);
    expect(executor.submitted).toEqual([]);
    expect((await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'a' }))).toMatchObject({ state: 'running', tryNumber: 1 });
    engine.onExecutorEvent({
      type: 'finished', key: 'd/r1/a/1', outcome: 'success', noRetry: false, value: 7, error: null,
      exitCode: null, signal: null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 1, at: Date.now(),
    });
    await engine.whenRunFinished(adopted);
    expect(executor.submitted.map((w) => `${w.taskId}#${w.tryNumber}`)).toEqual(['b#1']);
    expect(await store.getXcom({ dagId: 'd', runId: 'r1', taskId: 'a' })).toBe(7);
  });
});
