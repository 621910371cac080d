import { describe, expect, it } from 'vitest';
import { initialTaskInstances, RunState } from '../../src/scheduler/run-state.js';
import { ok, setup } from '../helpers/engine-harness.js';

describe('RunEngine', () => {
  it('runs a chain in order, persists every state, and passes XCom values', async () => {
    const { engine, executor, store, newRun } = await setup({}, (d) => d.chain(d.task('a', () => 1), d.task('b', () => 1), d.task('c', () => 1)), (w) => ({ outcome: 'success', value: `${w.taskId}-out` }));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    expect(executor.submitted.map((w) => w.taskId)).toEqual(['a', 'b', 'c']);
    expect(executor.maxRunning).toBe(1);
    const tis = await store.getTaskInstances('d', 'r1');
    expect(tis.map((t) => [t.taskId, t.state, t.tryNumber])).toEqual([['a', 'success', 1], ['b', 'success', 1], ['c', 'success', 1]]);
    expect((await store.getRun('d', 'r1'))?.state).toBe('success');
    expect(await store.getXcom({ dagId: 'd', runId: 'r1', taskId: 'b' })).toBe('b-out');
    expect(await engine.taskApi.xcom('d', 'r1', 'a')).toBe('a-out');
  });

  it('retries with a new try number and gives up after maxTries', async () => {
    const { engine, store, newRun } = await setup({ defaults: { retryDelay: 0 } }, (d) => {
      d.task('flaky', () => 1, { retries: 2 });
      d.task('hopeless', () => 1, { retries: 1 });
      d.task('stop', () => 1, { retries: 3 });
    }, (w) => (w.taskId === 'flaky' && w.tryNumber === 3 ? ok : w.taskId === 'stop' ? { outcome: 'failed', noRetry: true } : { outcome: 'failed', message: `try ${w.tryNumber}` }));
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    const tis = Object.fromEntries((await store.getTaskInstances('d', 'r1')).map((t) => [t.taskId, t]));
    expect(tis.flaky).toMatchObject({ state: 'success', tryNumber: 3, error: null });
    expect(tis.hopeless).toMatchObject({ state: 'failed', tryNumber: 2, error: 'try 2' });
    expect(tis.stop).toMatchObject({ state: 'failed', tryNumber: 1 });
    expect((await store.getRun('d', 'r1'))?.state).toBe('failed');
  });

  it('never runs more than maxActiveTasks of a run at once', async () => {
    const { engine, executor, newRun } = await setup({ maxActiveTasks: 3 }, (d) => {
      for (let i = 0; i < 12; i++) d.task(`t${i}`, () => 1);
    }, () => ok);
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    expect(executor.submitted).toHaveLength(12);
    expect(executor.maxRunning).toBe(3);
  });

  it('respects pool slots and dispatches by priority weight when slots are scarce', async () => {
    const { engine, executor, newRun } = await setup({}, (d) => {
      d.task('low', () => 1, { priorityWeight: 1, pool: 'p' });
      d.task('high', () => 1, { priorityWeight: 10, pool: 'p' });
      d.task('mid', () => 1, { priorityWeight: 5, pool: 'p' });
      d.task('big', () => 1, { priorityWeight: 0, pool: 'p', poolSlots: 2 });
    }, () => ok, { poolSlots: new Map([['p', 2]]), parallelism: 1 });
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    expect(executor.submitted.map((w) => w.taskId)).toEqual(['high', 'mid', 'low', 'big']);
    expect(executor.maxRunning).toBe(1);
  });

  it('caps the pool across tasks', async () => {
    const { engine, executor, newRun } = await setup({}, (d) => {
      for (let i = 0; i < 6; i++) d.task(`t${i}`, () => 1, { pool: 'narrow' });
    }, () => ok, { poolSlots: new Map([['narrow', 2]]) });
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    expect(executor.maxRunning).toBe(2);
  });

  it('with poolsInStore, takes slots in the store: a try it refuses stays scheduled and goes as soon as a slot frees', async () => {
    const { engine, executor, store, newRun, serialized, writes } = await setup({}, (d) => {
      for (let i = 0; i < 5; i++) d.task(`t${i}`, () => 1, { pool: 'narrow' });
    }, () => ({ outcome: 'hold' }), { poolSlots: new Map([['narrow', 4]]), poolsInStore: true });
    // The engine's estimate says 4 slots; the table says 3, and another scheduler's try holds one.
    await store.setPool({ name: 'narrow', slots: 3, description: null });
    const theirs = initialTaskInstances('d', 'theirs', serialized.tasks.slice(0, 1)).map((t) => ({ ...t, state: 'running' as const, tryNumber: 1, queuedBy: 'other' }));
    await store.createRun({ dagId: 'd', runId: 'theirs', runType: 'manual', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, state: 'running', params: {}, dagVersion: 'v1', queuedAt: 0, startedAt: 0, endedAt: null, claimedBy: 'other' }, theirs);
    const run = await newRun();
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 2);
    await engine.whenIdle();
    const states = async () => (await store.getTaskInstances('d', 'r1')).map((t) => `${t.taskId}:${t.state}:${t.tryNumber}`);
    expect(await states()).toEqual(['t0:running:1', 't1:running:1', 't2:scheduled:0', 't3:scheduled:0', 't4:scheduled:0']);
    expect(executor.submitted.map((w) => w.taskId)).toEqual(['t0', 't1']);
    // Refused once (t2 and t3 keep their place in line, ahead of t4), the engine waits for
    // room instead of asking again on every event.
    const writesWhenFull = writes.count;
    engine.onExecutorEvent({ type: 'heartbeat', keys: executor.heldKeys(), at: Date.now() });
    await engine.whenIdle();
    expect(writes.count).toBe(writesWhenFull + 1); // the heartbeat's own
    expect(executor.submitted).toHaveLength(2);
    // One of ours ends: the next try goes at once, no tick needed.
    executor.release(executor.heldKeys()[0]!);
    await until(() => executor.submitted.length === 3);
    expect(executor.submitted[2]!.taskId).toBe('t2');
    // The other scheduler's try ends: seen at the next tick (poke).
    await store.write({ tis: [{ row: { ...theirs[0]!, state: 'success' }, expect: { tryNumber: 1, states: ['running'] } }] });
    await engine.whenIdle();
    expect(executor.submitted).toHaveLength(3);
    engine.poke();
    await until(() => executor.heldKeys().length === 3); // the table's 3 slots, all ours now
    expect(executor.submitted.map((w) => w.taskId)).toEqual(['t0', 't1', 't2', 't3']);
    for (const k of executor.heldKeys()) executor.release(k);
    await until(() => executor.submitted.length === 5 && executor.heldKeys().length === 1);
    executor.release(executor.heldKeys()[0]!);
    expect((await engine.whenRunFinished(run)).run.state).toBe('success');
    expect(executor.maxRunning).toBe(3);
  });

  it('ignores a late event from a stale try', async () => {
    const { engine, executor, store, newRun } = await setup({ defaults: { retryDelay: 0 } }, (d) => d.task('a', () => 1, { retries: 1 }), (w) => (w.tryNumber === 1 ? { outcome: 'hold' } : ok));
    const run = await newRun();
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 1);
    const [firstKey] = executor.heldKeys();
    // The first try is declared lost (as a zombie would be) and retried; then its late success arrives.
    engine.onExecutorEvent({ type: 'finished', key: firstKey!, outcome: 'failed', noRetry: false, error: { name: 'Error', message: 'lost' }, exitCode: null, signal: null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 1, at: Date.now() });
    await engine.whenRunFinished(run);
    executor.release(firstKey!, { outcome: 'success', value: 'stale' });
    await engine.whenIdle();
    const [ti] = await store.getTaskInstances('d', 'r1');
    expect(ti).toMatchObject({ state: 'success', tryNumber: 2 });
    expect(await store.getXcom({ dagId: 'd', runId: 'r1', taskId: 'a' })).toBeUndefined();
  });

  it('takes over a run left running by a dead scheduler: orphans get a new try', async () => {
    const { engine, executor, store, newRun, serialized } = await setup({}, (d) => d.chain(d.task('a', () => 1), d.task('b', () => 1)), () => ok);
    const run = await newRun();
    // Simulate a scheduler that died with 'a' running at try 1.
    const [a] = await store.getTaskInstances('d', 'r1');
    const runningA = { ...a!, state: 'running' as const, tryNumber: 1, queuedBy: 'dead', startedAt: Date.now() };
    expect((await store.write({ tis: [{ row: runningA, expect: { tryNumber: 0, states: ['none'] } }] })).tis).toEqual([true]);
    const adopted = new RunState(run.run, serialized, '/dev/null', await store.getTaskInstances('d', 'r1'));
    engine.adopt(adopted);
    await engine.whenRunFinished(adopted);
    expect(executor.submitted.map((w) => `${w.taskId}#${w.tryNumber}`)).toEqual(['a#2', 'b#1']);
    expect((await store.getRun('d', 'r1'))?.state).toBe('success');
  });

  it("commits a try's start together with its end: one transaction per task of a chain", async () => {
    const { engine, store, newRun } = await setup({}, (d) => d.chain(...Array.from({ length: 6 }, (_, i) => d.task(`t${i}`, () => 1))), () => ok);
    let transactions = 0;
    const write = store.write.bind(store);
    store.write = (batch) => {
      transactions++;
      return write(batch);
    };
    const run = await newRun();
    engine.adopt(run);
    await engine.whenRunFinished(run);
    // adopt (run running + t0 queued), then per task: its end + the next one queued; the
    // run's end rides with the last. A separate queued -> running commit would double this.
    expect(transactions).toBeLessThanOrEqual(6 + 1);
    const tis = await store.getTaskInstances('d', 'r1');
    expect(tis.every((t) => t.state === 'success' && t.startedAt !== null && t.pid === 1)).toBe(true);
  });

  it("still records a long try's start on its own, within the backstop", async () => {
    const { engine, executor, store, newRun } = await setup({}, (d) => d.task('long', () => 1), () => ({ outcome: 'hold' }));
    const run = await newRun();
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 1);
    const deadline = Date.now() + 5000;
    while ((await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'long' }))?.state !== 'running') {
      if (Date.now() > deadline) throw new Error('the running state never reached the database');
      await new Promise((r) => setTimeout(r, 10));
    }
    executor.release(executor.heldKeys()[0]!);
    await engine.whenRunFinished(run);
  });

  it('rejects the run when someone else changes it under the engine', async () => {
    const { engine, executor, store, newRun } = await setup({}, (d) => d.task('a', () => 1), () => ({ outcome: 'hold' }));
    const run = await newRun();
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 1);
    await engine.whenIdle();
    // `kiln tasks clear` from another process resets the task instance.
    const [ti] = await store.getTaskInstances('d', 'r1');
    await store.write({ tis: [{ row: { ...ti!, state: 'none' }, expect: { tryNumber: ti!.tryNumber, states: [ti!.state] } }] });
    const finished = engine.whenRunFinished(run);
    executor.release(executor.heldKeys()[0]!);
    await expect(finished).rejects.toThrow(/changed by another process/);
  });
});

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}
