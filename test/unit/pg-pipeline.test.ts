import { describe, expect, it } from 'vitest';
import { PgPipeline } from '../../src/store/postgres/pipeline.js';

/** A query answered after `ms`, with `value` or (if it is an Error) that error. */
const answer = <T>(ms: number, value: T): Promise<T> =>
  new Promise((resolve, reject) => setTimeout(() => (value instanceof Error ? reject(value) : resolve(value)), ms));

describe('PgPipeline', () => {
  it('reports the first error in send order, not the first to arrive', async () => {
    const pipe = new PgPipeline();
    pipe.send(answer(5, 'BEGIN'));
    pipe.send(answer(30, new Error('null value in column "state" violates not-null constraint')));
    pipe.send(answer(1, new Error('current transaction is aborted')));
    const err = await pipe.settle();
    expect((err as Error).message).toMatch(/not-null/);
    // settle() consumed what was sent: a second settle has nothing to report.
    expect(await pipe.settle()).toBeUndefined();
  });

  it('flush() resolves when every answer is in, and throws the first error', async () => {
    const pipe = new PgPipeline();
    const order: string[] = [];
    pipe.send(answer(10, 'a').then((v) => order.push(v)));
    pipe.send(answer(1, 'b').then((v) => order.push(v)));
    await pipe.flush();
    expect(order.sort()).toEqual(['a', 'b']);
    pipe.send(answer(1, new Error('deadlock detected')));
    await expect(pipe.flush()).rejects.toThrow('deadlock detected');
  });

  it('leaves no unhandled rejection for an answer nobody awaits', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const pipe = new PgPipeline();
      pipe.send(answer(1, new Error('lost')));
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
      expect(((await pipe.settle()) as Error).message).toBe('lost');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
