/**
 * The change-feed follower on a real (SQLite) store: live subscribers get each event once, in
 * order; a subscriber resuming after an id catches up from the store and then follows live
 * with no gap and no repeat; trimming loops in batches until done.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangeFeedFollower, trimChangeFeed } from '../../src/app/change-feed.js';
import { createStore } from '../../src/store/index.js';
import { EVENT_TRIM_BATCH } from '../../src/store/feed.js';
import type { ChangeEvent, Store } from '../../src/store/types.js';
import { until } from '../fixtures/scheduler/harness.js';
import { createTestSchema, postgresTestUrl } from '../helpers/postgres.js';
import { run, serializedDag } from '../store/fixtures.js';

describe('ChangeFeedFollower', () => {
  let store: Store;
  let follower: ChangeFeedFollower;
  afterEach(async () => {
    follower?.close();
    await store?.close();
  });

  const collector = () => {
    const got: ChangeEvent[] = [];
    const resets: number[] = [];
    return { got, resets, subscriber: { events: (e: ChangeEvent[]) => got.push(...e), reset: (id: number) => resets.push(id) } };
  };

  it('hands out live events once each, and catches a resuming subscriber up without a gap or a repeat', async () => {
    store = await createStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kiln-follow-')), 'k.db')}`);
    await store.migrate();
    await store.upsertDag({ dagId: 'd', file: '/d.ts', version: 'v1', serialized: serializedDag('d') });
    for (let i = 1; i <= 5; i++) await store.createRun(run('d', `r${i}`), []);
    const ids = (await store.readEvents(0, 100)).map((e) => e.id);
    follower = new ChangeFeedFollower(store, { pollMs: 10 });

    const a = collector();
    const subA = await follower.subscribe(null, a.subscriber);
    expect(subA.position).toBe(ids[4]);
    expect(a.got).toEqual([]);
    await store.createRun(run('d', 'r6'), []);
    await store.createRun(run('d', 'r7'), []);
    await until(() => a.got.length === 2, 'A to get two live events');
    expect(a.got.map((e) => e.runId)).toEqual(['r6', 'r7']);

    const b = collector();
    const subB = await follower.subscribe(ids[2]!, b.subscriber);
    expect(b.got.map((e) => e.runId)).toEqual(['r4', 'r5', 'r6', 'r7']);
    expect(subB.position).toBe(a.got[1]!.id);
    await store.createRun(run('d', 'r8'), []);
    await until(() => a.got.length === 3 && b.got.length === 5, 'both to get r8');
    expect(a.got.map((e) => e.runId)).toEqual(['r6', 'r7', 'r8']);
    expect(b.got.map((e) => e.runId)).toEqual(['r4', 'r5', 'r6', 'r7', 'r8']);
    const bIds = b.got.map((e) => e.id);
    expect([...bIds].sort((x, y) => x - y)).toEqual(bIds);

    // Trimmed past what C asks for: C is told to reload, then follows live.
    subA.unsubscribe();
    subB.unsubscribe();
    await trimChangeFeed(store, 0, Date.now() + 1000);
    const c = collector();
    await follower.subscribe(ids[0]!, c.subscriber);
    expect(c.resets).toHaveLength(1);
    await store.createRun(run('d', 'r9'), []);
    await until(() => c.got.length === 1, 'C to follow live after the reset');
    expect(c.got[0]!.runId).toBe('r9');
  });

  it('on PostgreSQL, reads at once when another connection commits events (LISTEN/NOTIFY), with no timer to wait for', async () => {
    const url = await postgresTestUrl('PostgreSQL change-feed notification test');
    if (url === null) return;
    const schema = await createTestSchema(url, 'kiln_notify');
    const writer = await createStore(schema.url);
    try {
      store = await createStore(schema.url);
      await store.migrate();
      await store.upsertDag({ dagId: 'd', file: '/d.ts', version: 'v1', serialized: serializedDag('d') });
      // Timers far beyond the test: only a notification can deliver in time.
      follower = new ChangeFeedFollower(store, { pollMs: 600_000, watchPollMs: 600_000 });
      const a = collector();
      await follower.subscribe(null, a.subscriber);
      // subscribe() resolves once LISTEN is in place.
      await writer.createRun(run('d', 'n1'), []);
      await until(() => a.got.length === 1, 'the notified event', 5_000);
      expect(a.got[0]!.runId).toBe('n1');
      // A notification of another schema on the same database is not ours.
      const other = await createTestSchema(url, 'kiln_notify_other');
      const otherStore = await createStore(other.url);
      try {
        await otherStore.migrate();
        await otherStore.upsertDag({ dagId: 'd', file: '/d.ts', version: 'v1', serialized: serializedDag('d') });
        await otherStore.createRun(run('d', 'elsewhere'), []);
      } finally {
        await otherStore.close();
        await other.drop();
      }
      await writer.createRun(run('d', 'n2'), []);
      await until(() => a.got.length === 2, 'the second notified event', 5_000);
      expect(a.got.map((e) => e.runId)).toEqual(['n1', 'n2']);
    } finally {
      follower.close();
      await writer.close();
      await store.close();
      await schema.drop();
    }
  });

  it('trims in batches until fewer than a batch are left', async () => {
    const calls: Array<[number, number]> = [];
    const counts = [EVENT_TRIM_BATCH, EVENT_TRIM_BATCH, 7];
    const fake = { trimEvents: async (before: number, limit: number) => (calls.push([before, limit]), counts.shift() ?? 0) } as unknown as Store;
    expect(await trimChangeFeed(fake, 60_000, 100_000)).toBe(2 * EVENT_TRIM_BATCH + 7);
    expect(calls).toEqual([[40_000, EVENT_TRIM_BATCH], [40_000, EVENT_TRIM_BATCH], [40_000, EVENT_TRIM_BATCH]]);
  });
});
