/**
 * Group commit in the run engine's writer (GATHER_MAX_MS in engine-writer.ts): after a slow
 * flush, the next one waits for the tries the last one submitted, so their ends go out
 * together instead of the first end alone and the rest a flush later.
 */
import { describe, expect, it } from 'vitest';
import type { TaskWork } from '../../src/protocol/messages.js';
import { EngineWriter, type WriterHost } from '../../src/scheduler/engine-writer.js';
import type { RunState } from '../../src/scheduler/run-state.js';
import { StoreOutage } from '../../src/scheduler/store-outage.js';
import type { Store, WriteBatch, WriteBatchResult } from '../../src/store/types.js';
import { ti } from '../store/fixtures.js';

const run = { key: 'etl\u0000r1' } as RunState;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store whose every write takes `writeMs`; it records each batch's task-instance states. */
function slowStore(writeMs: number) {
  const batches: string[][] = [];
  const store = {
    async write(batch: WriteBatch): Promise<WriteBatchResult> {
      batches.push((batch.tis ?? []).map((w) => `${w.row.taskId}:${w.row.state}`));
      await sleep(writeMs);
      return { tis: (batch.tis ?? []).map(() => true), runs: (batch.runs ?? []).map(() => true) };
    },
  } as unknown as Store;
  return { store, batches };
}

/**
 * Four tries are queued in one flush; once it commits each is "submitted" and ends on its
 * own: the first at the next turn of the event loop, the others about a millisecond later.
 */
async function fourTries(writeMs: number): Promise<string[][]> {
  const { store, batches } = slowStore(writeMs);
  const tasks = ['a', 'b', 'c', 'd'];
  const end = (taskId: string) => {
    writer.pending.setTi(run, ti('etl', 'r1', taskId, { state: 'queued', tryNumber: 1 }), ti('etl', 'r1', taskId, { state: 'success', tryNumber: 1 }), ['queued']);
    writer.requestFlush();
    writer.tryEnded();
  };
  const host: WriterHost = {
    dispatch: () => {},
    poolsAtWrite: () => undefined,
    committed: (p) => {
      p.works.forEach(({ work }, i) => (i === 0 ? setImmediate(() => end(work.taskId)) : setTimeout(() => end(work.taskId), 1)));
    },
    reloadsDue: () => false,
    applyReloads: async () => {},
    failed: (err) => {
      throw err;
    },
  };
  const writer = new EngineWriter(store, new StoreOutage(), host);
  for (const taskId of tasks) {
    writer.pending.setTi(run, ti('etl', 'r1', taskId), ti('etl', 'r1', taskId, { state: 'queued', tryNumber: 1 }), ['none']);
    writer.pending.works.push({ work: { key: `etl/r1/${taskId}/1`, taskId } as TaskWork, run });
  }
  writer.requestFlush();
  for (let waited = 0; batches.flat().length < 8 && waited < 2_000; waited += 5) await sleep(5);
  await writer.whenIdle();
  return batches.map((b) => b.sort());
}

describe('EngineWriter group commit', () => {
  it('after a slow flush (PostgreSQL-like, 8 ms), the ends of the tries it submitted go out in one flush', async () => {
    const batches = await fourTries(8);
    expect(batches).toEqual([
      ['a:queued', 'b:queued', 'c:queued', 'd:queued'],
      ['a:success', 'b:success', 'c:success', 'd:success'],
    ]);
  });

  it('after a quick flush (SQLite-like) it does not wait: the first end goes out without the others', async () => {
    const batches = await fourTries(0);
    expect(batches[0]).toEqual(['a:queued', 'b:queued', 'c:queued', 'd:queued']);
    expect(batches.length).toBeGreaterThan(2);
    expect(batches.slice(1).flat().sort()).toEqual(['a:success', 'b:success', 'c:success', 'd:success']);
  });
});
