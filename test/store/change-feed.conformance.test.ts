/**
 * The change feed (migrations/0005) on both dialects: every committed state change appends one
 * event in the same transaction, nothing else does, ids grow in order, readers page by id,
 * trimming keeps the newest; and the grid page reads runs by logical date with a cursor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestSchema, postgresTestUrl } from '../helpers/postgres.js';
import { run, serializedDag, ti } from './fixtures.js';

const sqliteDir = mkdtempSync(join(tmpdir(), 'kiln-feed-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
const pgUrl = await postgresTestUrl('PostgreSQL change-feed tests');
let files = 0;

const dialects = [
  { name: 'sqlite', open: async () => ({ url: `sqlite:${join(sqliteDir, `f${++files}.db`)}`, drop: async () => {} }) },
  { name: 'postgres', open: pgUrl === null ? null : () => createTestSchema(pgUrl, 'kiln_feed') },
];

describe.each(dialects)('$name change feed', ({ open }) => {
  const it = open === null ? test.skip : test;
  let store: Store;
  let drop: () => Promise<void>;

  beforeEach(async () => {
    if (open === null) return;
    const target = await open();
    drop = target.drop;
    store = await createStore(target.url);
    await store.migrate();
    await store.upsertDag({ dagId: 'd', file: '/d.ts', version: 'v1', serialized: serializedDag('d', ['a', 'b']) });
  });
  afterEach(async () => {
    if (open === null) return;
    await store.close();
    await drop();
  });

  it('appends one event per committed state change, in order, and none for a failed compare-and-set or a same-state rewrite', async () => {
    expect(await store.eventIdRange()).toBeNull();
    expect(await store.createRun(run('d', 'r1'), [ti('d', 'r1', 'a'), ti('d', 'r1', 'b')])).toBe(true);
    expect(await store.createRun(run('d', 'r1'), [])).toBe(false); // a duplicate adds no event
    const queued = { ...ti('d', 'r1', 'a'), state: 'queued' as const, tryNumber: 1 };
    const result = await store.write({
      tis: [
        { row: queued, expect: { tryNumber: 0, states: ['none'] } },
        { row: { ...ti('d', 'r1', 'b'), state: 'queued', tryNumber: 1 }, expect: { tryNumber: 5, states: ['none'] } }, // stale: no event
      ],
      runs: [{ dagId: 'd', runId: 'r1', expectStates: ['queued'], set: { state: 'running', startedAt: 1 } }],
    });
    expect(result.tis).toEqual([true, false]);
    // A running try's pid is recorded: same state, same try, no event.
    await store.write({ tis: [{ row: { ...queued, pid: 42 }, expect: { tryNumber: 1, states: ['queued'] } }] });
    await store.write({ heartbeats: { at: 5, keys: [{ dagId: 'd', runId: 'r1', taskId: 'a', mapIndex: -1, tryNumber: 1 }] } });
    const events = await store.readEvents(0, 100);
    expect(events.map((e) => [e.kind, e.runId, e.taskId, e.state, e.tryNumber])).toEqual([
      ['run', 'r1', null, 'queued', null],
      ['ti', 'r1', 'a', 'queued', 1],
      ['run', 'r1', null, 'running', null],
    ]);
    expect(events.every((e, i) => i === 0 || e.id > events[i - 1]!.id)).toBe(true);
    expect(events.every((e) => typeof e.id === 'number' && typeof e.at === 'number' && e.dagId === 'd')).toBe(true);
    // Paging by id.
    expect((await store.readEvents(events[0]!.id, 1)).map((e) => e.id)).toEqual([events[1]!.id]);
    expect(await store.readEvents(events[2]!.id, 100)).toEqual([]);
    expect(await store.eventIdRange()).toEqual({ first: events[0]!.id, last: events[2]!.id });
  });

  it('appends nothing for a write that did not apply though its row already holds that state: a replayed batch, a stale start beside a heartbeat', async () => {
    const a = ti('d', 'r1', 'a', { state: 'running', tryNumber: 1 });
    await store.createRun(run('d', 'r1'), [a, ti('d', 'r1', 'b')]);
    const start = (await store.readEvents(0, 100)).length;
    // A replay of queued -> running (it committed once already) beside a heartbeat that touches the row.
    const replay = await store.write({
      tis: [{ row: a, expect: { tryNumber: 1, states: ['queued'] } }],
      heartbeats: { at: 7, keys: [{ dagId: 'd', runId: 'r1', taskId: 'a', mapIndex: -1, tryNumber: 1 }] },
      runs: [{ dagId: 'd', runId: 'r1', expectStates: ['running'], set: { state: 'success' } }], // the run is queued: stale
    });
    expect(replay).toEqual({ tis: [false], runs: [false] });
    expect((await store.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'a' }))!.lastHeartbeatAt).toBe(7);
    expect((await store.readEvents(0, 100)).length).toBe(start);
  });

  it('appends the rows a batch queueing within pool limits wrote: a queued try, never a refused one', async () => {
    await store.setPool({ name: 'one', slots: 1, description: null });
    const [a, b] = [ti('d', 'r1', 'a', { state: 'scheduled', pool: 'one' }), ti('d', 'r1', 'b', { state: 'scheduled', pool: 'one' })];
    await store.createRun(run('d', 'r1'), [a, b]);
    const queue = (row: typeof a) => ({ row: { ...row, state: 'queued' as const, tryNumber: 1 }, expect: { tryNumber: 0, states: ['scheduled' as const] }, ifPoolFull: row });
    const res = await store.write({ tis: [queue(a), queue(b)], runs: [{ dagId: 'd', runId: 'r1', expectStates: ['queued'], set: { state: 'running', startedAt: 1 } }] });
    expect(res).toMatchObject({ tis: [true, true], runs: [true], poolFull: [1] });
    const events = await store.readEvents(0, 100);
    expect(events.map((e) => [e.kind, e.taskId, e.state, e.tryNumber])).toEqual([
      ['run', null, 'queued', null],
      ['ti', 'a', 'queued', 1],
      ['run', null, 'running', null],
    ]);
  });

  it('startRun appends the run going to running', async () => {
    await store.createRun(run('d', 'r1', { claimedBy: 's1' }), [ti('d', 'r1', 'a')]);
    expect(await store.startRun('d', 'r1', 's1', 16, 10)).toBe(true);
    expect(await store.startRun('d', 'r1', 's1', 16, 10)).toBe(false);
    expect((await store.readEvents(0, 10)).map((e) => e.state)).toEqual(['queued', 'running']);
  });

  it('trims old events in batches but keeps the newest, and ids keep growing after a trim', async () => {
    for (let i = 1; i <= 5; i++) await store.createRun(run('d', `r${i}`), []);
    const all = await store.readEvents(0, 100);
    expect(all).toHaveLength(5);
    expect(await store.trimEvents(Date.now() + 60_000, 2)).toBe(2);
    expect((await store.readEvents(0, 100)).map((e) => e.runId)).toEqual(['r3', 'r4', 'r5']);
    expect(await store.trimEvents(Date.now() + 60_000, 100)).toBe(2);
    expect((await store.readEvents(0, 100)).map((e) => e.runId)).toEqual(['r5']);
    expect(await store.trimEvents(Date.now() - 60_000, 100)).toBe(0); // nothing that old
    await store.createRun(run('d', 'r6'), []);
    const [last] = await store.readEvents(all[4]!.id, 10);
    expect(last!.id).toBeGreaterThan(all[4]!.id);
  });

  it('pages the grid by logical date with a cursor, with the task instances of the page', async () => {
    for (let i = 1; i <= 5; i++) await store.createRun(run('d', `r${i}`, { logicalDate: i * 1000 }), [ti('d', `r${i}`, 'a'), ti('d', `r${i}`, 'b')]);
    await store.createRun(run('other', 'x', { logicalDate: 9000 }), [ti('other', 'x', 'a')]);
    const page1 = await store.gridRuns('d', 2);
    expect(page1.runs.map((r) => r.runId)).toEqual(['r5', 'r4']);
    expect(page1.tis.map((t) => `${t.runId}/${t.taskId}`).sort()).toEqual(['r4/a', 'r4/b', 'r5/a', 'r5/b']);
    const last = page1.runs[1]!;
    const page2 = await store.gridRuns('d', 10, { logicalDate: last.logicalDate, runId: last.runId });
    expect(page2.runs.map((r) => r.runId)).toEqual(['r3', 'r2', 'r1']);
    expect(page2.tis).toHaveLength(6);
    expect(page2.mapped).toEqual([]);
    expect(await store.gridRuns('nope', 10)).toEqual({ runs: [], tis: [], mapped: [] });
  });

  it("reads one task's instances across the latest runs, newest logical date first", async () => {
    for (let i = 1; i <= 4; i++) await store.createRun(run('d', `r${i}`, { logicalDate: i * 1000 }), [ti('d', `r${i}`, 'a', { peakRssBytes: i * 100 }), ti('d', `r${i}`, 'b')]);
    const history = await store.taskHistory('d', 'a', 3);
    expect(history.map((h) => [h.runId, h.taskId, h.logicalDate, h.peakRssBytes])).toEqual([['r4', 'a', 4000, 400], ['r3', 'a', 3000, 300], ['r2', 'a', 2000, 200]]);
    expect(await store.taskHistory('d', 'nope', 3)).toEqual([]);
  });

  it('lists schedulers with their heartbeats', async () => {
    await store.heartbeatScheduler({ id: 's1', hostname: 'h', pid: 1, startedAt: 1, lastHeartbeatAt: 100 });
    await store.heartbeatScheduler({ id: 's2', hostname: 'h', pid: 2, startedAt: 1, lastHeartbeatAt: 200 });
    expect((await store.listSchedulers()).map((s) => [s.id, s.lastHeartbeatAt])).toEqual([['s2', 200], ['s1', 100]]);
  });
});
