/**
 * kiln's scheduler loop as case 3 measures it: one tick of the scheduler service
 * (dist/src/scheduler/scheduler.js), driven directly. The scheduler holds the running runs
 * in its run engine (adopted at the first tick, which reads their task instances once) over
 * an executor stub that starts every try it is given and never finishes one, so the runs
 * stay running and the executor stays full, as in a busy scheduler. A measured tick is
 * `tick()` plus the engine flush it triggers.
 *
 * `Scheduler.tick()` is private in TypeScript only; the benchmark calls it from JavaScript
 * rather than adding a public method to the service for it.
 */
import { Scheduler } from '../../dist/src/scheduler/scheduler.js';
import { RunEngine } from '../../dist/src/scheduler/run-engine.js';

const FAR_FUTURE = 8.64e15;

/** An executor that takes `parallelism` tries, reports them started, and never ends them. */
function stuckExecutor(parallelism) {
  let onEvent = () => {};
  const running = new Set();
  return {
    name: 'bench-stuck',
    bind(fn) {
      onEvent = fn;
    },
    async start() {},
    submit(work) {
      running.add(work.key);
      queueMicrotask(() => onEvent({ type: 'started', key: work.key, isolation: work.isolation, pid: 1, threadId: null, at: Date.now() }));
    },
    freeSlots: () => parallelism - running.size,
    cancel() {},
    async stop() {},
  };
}

export async function kilnLoop() {
  if (typeof Scheduler?.prototype?.tick !== 'function') throw new Error('dist/src/scheduler/scheduler.js has no Scheduler.tick: update bench/lib/kiln-loop.mjs');
  return {
    description: 'one tick of kiln\'s scheduler service (`Scheduler.tick()` from dist/src/scheduler/scheduler.js, plus the run-engine flush it triggers), holding the 20 running runs in its run engine over an executor stub that starts up to 8 tries and never ends them. A tick claims run rows, checks liveness over the queued and running task instances only, and reads the pools. The first tick, which adopts the runs and so reads each run\'s task instances once, is measured separately ("adoption"). See bench/lib/kiln-loop.mjs.',
    async open(store, { schedulerId, zombieTimeoutMs, queuedTimeoutMs }) {
      const executor = stuckExecutor(8);
      const engine = new RunEngine({ store, executor, schedulerId, logsFolder: '/tmp/kiln-bench-logs', defaultIsolation: 'thread' });
      executor.bind((event) => engine.onExecutorEvent(event));
      const scheduler = new Scheduler({
        store, engine, schedulerId,
        dagSource: { refresh: async () => {} },
        poolSlots: new Map(),
        intervalMs: 1000,
        dagDirListIntervalMs: 3_600_000,
        zombieTimeoutMs, queuedTimeoutMs,
        takeoverAfterMs: 30_000,
        maxRuns: 32,
      });
      const tick = async () => {
        await scheduler.tick();
        await engine.whenIdle();
      };
      // The first tick adopts every run: the one time their task instances are read.
      const adoption = await (async () => {
        const { heapDelta } = await import('./alloc.mjs');
        return heapDelta(tick);
      })();
      return {
        adoption,
        heldRuns: engine.runCount,
        tick,
        /** The store reads of a steady tick, each alone, for the allocation breakdown. */
        parts(opts) {
          return {
            claimRuns: () => store.claimRuns(schedulerId, opts().now - 30_000, 32 - engine.runCount),
            'findZombies + findStaleQueued (all active TIs)': async () => {
              await store.findZombies(FAR_FUTURE, 100_000);
              await store.findStaleQueued(FAR_FUTURE, 100_000);
            },
            listPools: () => store.listPools(),
          };
        },
        async close() {
          engine.close();
        },
      };
    },
  };
}
