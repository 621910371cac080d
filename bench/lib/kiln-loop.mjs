/**
 * kiln's scheduler loop as case 3 measures it. Until the scheduler service exists in dist/,
 * this is the store-level query pattern of its periodic (time-based) work: what one tick
 * reads and writes, through kiln's own Store methods:
 *   heartbeatScheduler, claimRuns (run rows, not task instances), listDags (schedules),
 *   findZombies and findStaleQueued (only running rows with an old heartbeat and queued
 *   rows queued too long: SQL selects them, not JavaScript).
 * Readiness is event-driven in the run engine, so a tick does not look at task instances
 * of healthy runs at all.
 */
export async function kilnLoop() {
  return {
    description: 'the store-level query pattern of the periodic work of a scheduler tick (the scheduler service was not in dist/ when this ran): `heartbeatScheduler`, `claimRuns`, `listDags`, `findZombies`, `findStaleQueued`, then the same decisions as the naive loop over the rows returned. See bench/lib/kiln-loop.mjs.',
    async open(store, { schedulerId }) {
      return {
        async tick({ now, zombieTimeoutMs, queuedTimeoutMs }) {
          await store.heartbeatScheduler({ id: schedulerId, hostname: 'bench', pid: process.pid, startedAt: now, lastHeartbeatAt: now });
          await store.claimRuns(schedulerId, now - 30_000, 32);
          await store.listDags();
          const zombies = await store.findZombies(now - zombieTimeoutMs, 1000);
          const stale = await store.findStaleQueued(now - queuedTimeoutMs, 1000);
          return [...zombies.map((ti) => ({ kind: 'zombie', ti })), ...stale.map((ti) => ({ kind: 'requeue', ti }))];
        },
        /** Each step of a tick alone, for the allocation breakdown. */
        parts(opts) {
          return {
            heartbeatScheduler: () => { const { now } = opts(); return store.heartbeatScheduler({ id: schedulerId, hostname: 'bench', pid: process.pid, startedAt: now, lastHeartbeatAt: now }); },
            claimRuns: () => store.claimRuns(schedulerId, opts().now - 30_000, 32),
            listDags: () => store.listDags(),
            findZombies: () => store.findZombies(opts().now - opts().zombieTimeoutMs, 1000),
            findStaleQueued: () => store.findStaleQueued(opts().now - opts().queuedTimeoutMs, 1000),
          };
        },
        async close() {},
      };
    },
  };
}
