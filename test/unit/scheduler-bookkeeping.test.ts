/**
 * The run engine's small bookkeeping structures, alone: the ready queue's order, abandoned
 * tries per run, and pending writes that queue a try within its pool.
 */
import { describe, expect, it } from 'vitest';
import { OrphanTries } from '../../src/scheduler/orphans.js';
import { PendingWrites } from '../../src/scheduler/pending-writes.js';
import { ReadyQueue } from '../../src/scheduler/ready-queue.js';
import { initialTaskInstances, RunState } from '../../src/scheduler/run-state.js';
import type { TiRow } from '../../src/store/types.js';
import { run as runRow, serializedDag } from '../store/fixtures.js';

function newRun(runId = 'r1'): RunState {
  const dag = serializedDag('d', ['a', 'b', 'c', 'd']);
  for (const t of dag.tasks) t.upstream = [];
  return new RunState(runRow('d', runId), dag, '/dev/null', initialTaskInstances('d', runId, dag.tasks));
}

function order(q: ReadyQueue): string[] {
  const out: string[] = [];
  q.drain((_, taskId) => {
    out.push(taskId);
    return 'keep';
  });
  return out;
}

describe('ReadyQueue', () => {
  it('orders by priority, first come first served within one; a try put back goes ahead of its equals', () => {
    const run = newRun();
    const q = new ReadyQueue();
    q.push(run, 'a', 1);
    q.push(run, 'b', 5);
    q.push(run, 'c', 1);
    expect(order(q)).toEqual(['b', 'a', 'c']);
    q.push(run, 'd', 1, true);
    expect(order(q)).toEqual(['b', 'd', 'a', 'c']);
    q.remove(run, 'b');
    q.push(run, 'b', 0, true);
    expect(order(q)).toEqual(['d', 'a', 'c', 'b']);
    q.push(run, 'a', 9, true); // already in: stays where it is
    expect(order(q)).toEqual(['d', 'a', 'c', 'b']);
  });

  it('removes in O(1): a removed entry is never visited and the next drain drops it', () => {
    const run = newRun();
    const q = new ReadyQueue();
    for (const id of ['a', 'b', 'c', 'd']) q.push(run, id, 1);
    q.remove(run, 'b');
    q.remove(run, 'c');
    q.remove(run, 'nope'); // not queued: nothing happens
    expect(order(q)).toEqual(['a', 'd']);
    expect(q.size).toBe(2);
    q.push(run, 'c', 1);
    expect(order(q)).toEqual(['a', 'd', 'c']);
  });
});

describe('OrphanTries', () => {
  it('counts the abandoned tries of each run until they end or expire', () => {
    const o = new OrphanTries();
    const orphan = (runKey: string, taskId: string, until: number) => ({ runKey, tiKey: `${runKey}\u0000${taskId}`, pool: 'p', poolSlots: 1, until });
    o.add('d/r1/a/1', orphan('r1', 'a', 100));
    o.add('d/r1/b/1', orphan('r1', 'b', 200));
    o.add('d/r2/a/1', orphan('r2', 'a', 100));
    expect([o.inRun('r1'), o.inRun('r2'), o.inRun('r3')]).toEqual([2, 1, 0]);
    expect(o.blocksRun('r1')).toBe(true);
    expect(o.end('d/r1/a/1')?.tiKey).toBe('r1\u0000a');
    expect(o.end('d/r1/a/1')).toBeUndefined();
    expect(o.inRun('r1')).toBe(1);
    expect(o.expire(150).map((x) => x.runKey)).toEqual(['r2']);
    expect([o.inRun('r1'), o.inRun('r2'), o.blocksRun('r2')]).toEqual([1, 0, false]);
    o.expire(200);
    expect([o.size, o.blocksRun('r1'), o.blocksTask('r1\u0000b')]).toEqual([0, false, false]);
  });
});

describe('PendingWrites', () => {
  it('sends a try to queue with the row to write if its pool is full, collapsed over earlier changes', () => {
    const run = newRun();
    const p = new PendingWrites();
    const none = run.tis.get('a')!;
    const scheduled: TiRow = { ...none, state: 'scheduled' };
    const queued: TiRow = { ...scheduled, state: 'queued', tryNumber: 1, queuedBy: 's1' };
    p.setTi(run, none, scheduled, ['none']);
    p.setQueued(run, scheduled, queued, scheduled);
    expect(p.toWriteBatch()!.tis).toEqual([{ row: queued, expect: { tryNumber: 0, states: ['none'] }, ifPoolFull: scheduled }]);
    // Any later change to it (never queued, then) is a plain write again.
    p.setTi(run, queued, { ...scheduled, state: 'skipped' }, ['queued']);
    expect(p.toWriteBatch()!.tis![0]).toEqual({ row: { ...scheduled, state: 'skipped' }, expect: { tryNumber: 0, states: ['none'] } });
  });
});
