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
async function waitFor(done: () => boolean): Promise<void> {
  for (let waited = 0; !done() && waited < 5_000; waited += 2) await sleep(2);
}

/** A store whose every write takes `writeMs`; it records each batch's task-instance states. */
function slowStore(writeMs: number) {
  const batches: string[][] = [];
  const store = {
    async write(batch: WriteBatch): Promise<WriteBatchResult> {
      batches.push((batch.tis ?? []).map((w) => `${w.row.taskId}:${w.row.state}`));
      if (writeMs > 0) await sleep(writeMs);
      return { tis: (batch.tis ?? []).map(() => true), runs: (batch.runs ?? []).map(() => true) };
    },
  } as unknown as Store;
  return { store, batches };
}

/**
 * Four tries are queued in one flush; once it commits each is "submitted" and ends on its
 * own: the first at the next turn of the event loop, the others about a millisecond later,
 * or (holdOthers) only once a second batch has been written.
 */
async function fourTries(writeMs: number, { holdOthers = false, gatherMaxMs }: { holdOthers?: boolean; gatherMaxMs?: number } = {}): Promise<string[][]> {
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
      p.works.forEach(({ work }, i) => {
        if (i === 0) setImmediate(() => end(work.taskId));
        else if (!holdOthers) setTimeout(() => end(work.taskId), 1);
        else void waitFor(() => batches.length >= 2).then(() => end(work.taskId));
      });
    },
    reloadsDue: () => false,
    applyReloads: async () => {},
    failed: (err) => {
      throw err;
    },
  };
  const writer = new EngineWriter(store, new StoreOutage(), host, gatherMaxMs === undefined ? {} : { gatherMaxMs });
  for (const taskId of tasks) {
    writer.pending.setTi(run, ti('etl', 'r1', taskId), ti('etl', 'r1', taskId, { state: 'queued', tryNumber: 1 }), ['none']);
    writer.pending.works.push({ work: { key: `etl/r1/${taskId}/1`, taskId } as TaskWork, run });
  }
  writer.requestFlush();
  await waitFor(() => batches.flat().length >= 8);
  await writer.whenIdle();
  return batches.map((b) => b.sort());
}

describe('EngineWriter group commit', () => {
  it('after a slow flush, the ends of the tries it submitted go out in one flush', async () => {
    // A 200 ms write lets the next flush wait up to 100 ms (the bound raised for the test), so
    // the others' ends (about 1 ms after the first) are in even on a loaded machine.
    const batches = await fourTries(200, { gatherMaxMs: 1_000 });
    expect(batches).toEqual([
      ['a:queued', 'b:queued', 'c:queued', 'd:queued'],
      ['a:success', 'b:success', 'c:success', 'd:success'],
    ]);
  });

  it('after a quick flush (SQLite-like) it does not wait: the first end goes out while the others still run', async () => {
    // The others end only once the first end is written, and a wait, if there were one,
    // would last long enough for the test to time out: only a flush that does not wait passes.
    const batches = await fourTries(0, { holdOthers: true, gatherMaxMs: 60_000 });
    expect(batches[0]).toEqual(['a:queued', 'b:queued', 'c:queued', 'd:queued']);
    expect(batches[1]).toEqual(['a:success']);
    expect(batches.slice(2).flat().sort()).toEqual(['b:success', 'c:success', 'd:success']);
  });
});
