/**
 * A lost connection fails every statement of a pipelined write batch at once. The batch must
 * fail with that error and leave no rejected promise unhandled: one would end the scheduler
 * (seen in the connection-kill outage test before the fix).
 */
import { describe, expect, it } from 'vitest';
import { PgPipeline } from '../../src/store/postgres/pipeline.js';
import type { PgStatements } from '../../src/store/postgres/statements.js';
import { applyPgBatch, planPgBatch } from '../../src/store/postgres/write-batch.js';
import type { WriteBatch } from '../../src/store/types.js';
import { ti } from '../store/fixtures.js';

/** Statements whose every call is answered, a little later, with a lost connection. */
const lostConnection = new Proxy({}, {
  get: () => ({ execute: () => new Promise((_, reject) => setTimeout(() => reject(new Error('read ECONNRESET')), 1)) }),
}) as unknown as PgStatements;

describe('a pipelined write batch on a lost connection', () => {
  it('fails with the error and leaves nothing unhandled, also when it queues within pool limits', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const done = ti('d', 'r', 'a', { state: 'success', tryNumber: 1 });
      const next = ti('d', 'r', 'b', { state: 'scheduled' });
      const batch: WriteBatch = {
        tis: [
          { row: done, expect: { tryNumber: 1, states: ['running'] } },
          { row: { ...done, taskId: 'c' }, expect: { tryNumber: 1, states: ['running'] } },
          { row: { ...next, state: 'queued', tryNumber: 1 }, expect: { tryNumber: 0, states: ['scheduled'] }, ifPoolFull: next },
        ],
        runs: [{ dagId: 'd', runId: 'r', expectStates: ['running'], set: { state: 'success' } }],
        xcoms: [{ dagId: 'd', runId: 'r', taskId: 'a', value: 1 }],
      };
      const pipe = new PgPipeline();
      await expect(applyPgBatch(lostConnection, batch, planPgBatch(batch)!, pipe)).rejects.toThrow('ECONNRESET');
      expect((await pipe.settle()) as Error).toBeInstanceOf(Error);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
