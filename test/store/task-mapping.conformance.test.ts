/**
 * Dynamic task mapping in the store (migrations/0008), on every dialect like
 * store.conformance.test.ts: a task instance is (dag, run, task, map index). Instances of one
 * task coexist and are written, heartbeaten and read each on its own; expansions replace the
 * unexpanded instance (map index -1) with the mapped ones, all or nothing; XComs, callbacks,
 * the change feed and the UI's reads carry the map index.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { TiState } from '../../src/dag/types.js';
import type { CallbackRow, Store, TiExpansion, TiRow, TiWrite } from '../../src/store/types.js';
import { storeDialects, type StoreTarget } from './targets.js';
import { run, ti } from './fixtures.js';

type Target = StoreTarget;

const dialects = await storeDialects('PostgreSQL task mapping store tests', 'kiln_mapping');

/** Mapped instance `mapIndex` of task `taskId` in run etl/r1. */
const mi = (taskId: string, mapIndex: number, over: Partial<TiRow> = {}): TiRow => ti('etl', 'r1', taskId, { mapIndex, ...over });
const key = (taskId: string, mapIndex?: number) => ({ dagId: 'etl', runId: 'r1', taskId, ...(mapIndex === undefined ? {} : { mapIndex }) });
/** A compare-and-set write of `row` from (tryNumber, states). */
const cas = (row: TiRow, tryNumber: number, states: TiState[]): TiWrite => ({ row, expect: { tryNumber, states } });
const scheduledRows = (taskId: string, indexes: number[]) => indexes.map((i) => mi(taskId, i, { state: 'scheduled' }));
/** Expands task `taskId` of etl/r1 to `indexes`, replacing its placeholder if `expectStates` is given. */
const expansion = (taskId: string, indexes: number[], expectStates: TiState[] | null = ['none', 'scheduled']): TiExpansion => ({
  dagId: 'etl',
  runId: 'r1',
  taskId,
  placeholder: expectStates === null ? null : { expectStates },
  rows: scheduledRows(taskId, indexes),
});

describe.each(dialects)('$name store: task mapping', ({ newTarget }) => {
  const it = newTarget === null ? test.skip : test;
  let target: Target;
  let store: Store;
  const extra: Store[] = [];

  beforeEach(async () => {
    if (newTarget === null) return;
    target = await newTarget();
    store = await target.open();
    await store.migrate();
  });

  afterEach(async () => {
    if (newTarget === null) return;
    for (const s of extra.splice(0)) await s.close();
    await store.close();
    await target.dispose();
  });

  const tis = () => store.getTaskInstances('etl', 'r1');
  const indexesOf = async (taskId: string) => (await tis()).filter((t) => t.taskId === taskId).map((t) => t.mapIndex);

  describe('instances of one task', () => {
    it('coexist, are read in (task id, map index) order, and are found by their map index', async () => {
      const rows = [mi('m', 10), ti('etl', 'r1', 'z'), mi('m', 2), ti('etl', 'r1', 'a'), mi('m', 0)];
      expect(await store.createRun(run('etl', 'r1'), rows)).toBe(true);
      // Numeric order of map indexes: 2 before 10.
      expect((await tis()).map((t) => [t.taskId, t.mapIndex])).toEqual([['a', -1], ['m', 0], ['m', 2], ['m', 10], ['z', -1]]);
      expect(await store.getTaskInstance(key('m', 2))).toEqual(mi('m', 2));
      // No map index: the unmapped instance (-1), which a mapped task no longer has.
      expect(await store.getTaskInstance(key('m'))).toBeUndefined();
      expect(await store.getTaskInstance(key('a'))).toEqual(ti('etl', 'r1', 'a'));
      expect(await store.getTaskInstance(key('m', 5))).toBeUndefined();
    });

    it('are written by compare-and-set each on its own, in one batch or one by one', async () => {
      await store.createRun(run('etl', 'r1'), [mi('m', 0), mi('m', 1), mi('m', 2), mi('m', 3)]);
      const queued = (i: number) => mi('m', i, { state: 'queued', tryNumber: 1, queuedAt: 5 });
      // Distinct keys in one batch (PostgreSQL's bulk statement): each applies to its own row.
      const res = await store.write({ tis: [cas(queued(0), 0, ['none']), cas(queued(2), 0, ['none']), cas(queued(5), 0, ['none'])] });
      expect(res.tis).toEqual([true, true, false]); // map index 5 does not exist
      expect((await tis()).map((t) => [t.mapIndex, t.state])).toEqual([[0, 'queued'], [1, 'none'], [2, 'queued'], [3, 'none']]);
      // One key twice: in order, the second sees the first; a stale try of another index fails.
      const running = { ...queued(1), state: 'running' as const, startedAt: 6, pid: 9 };
      const again = await store.write({ tis: [cas(queued(1), 0, ['none']), cas(running, 1, ['queued']), cas(mi('m', 3, { state: 'failed' }), 4, ['none'])] });
      expect(again.tis).toEqual([true, true, false]);
      expect(await store.getTaskInstance(key('m', 1))).toEqual(running);
      expect(await store.getTaskInstance(key('m', 3))).toEqual(mi('m', 3));
      // The same write at map index -1 touches none of them.
      expect((await store.write({ tis: [cas(ti('etl', 'r1', 'm', { state: 'success' }), 0, ['none'])] })).tis).toEqual([false]);
    });

    it('are heartbeaten, found as zombies and as stale queued each on its own', async () => {
      await store.createRun(run('etl', 'r1'), [
        mi('m', 0, { state: 'running', tryNumber: 1, startedAt: 10 }),
        mi('m', 1, { state: 'running', tryNumber: 1, startedAt: 10 }),
        mi('m', 2, { state: 'queued', tryNumber: 1, queuedAt: 10 }),
      ]);
      await store.write({ heartbeats: { at: 500, keys: [{ ...key('m', 1), mapIndex: 1, tryNumber: 1 }] } });
      expect((await tis()).map((t) => t.lastHeartbeatAt)).toEqual([null, 500, null]);
      expect((await store.findZombies(100, 10)).map((t) => [t.taskId, t.mapIndex])).toEqual([['m', 0]]);
      expect((await store.findStaleQueued(100, 10)).map((t) => [t.taskId, t.mapIndex])).toEqual([['m', 2]]);
    });

    it('each take pool slots; a removed instance holds none', async () => {
      await store.setPool({ name: 'small', slots: 2, description: null });
      const rows = [0, 1, 2].map((i) => mi('m', i, { state: 'scheduled', pool: 'small' }));
      await store.createRun(run('etl', 'r1'), [...rows, mi('m', 3, { state: 'removed', tryNumber: 1, pool: 'small' })]);
      const queue = (row: TiRow): TiWrite => ({ row: { ...row, state: 'queued', tryNumber: 1 }, expect: { tryNumber: 0, states: ['scheduled'] }, ifPoolFull: row });
      const res = await store.write({ tis: rows.map(queue) });
      expect(res).toMatchObject({ tis: [true, true, true], poolFull: [2], poolRoom: { small: 0 } });
      expect((await tis()).map((t) => t.state)).toEqual(['queued', 'queued', 'scheduled', 'removed']);
      const snapshot = await store.metricsSnapshot();
      expect(snapshot.taskInstances).toEqual(
        expect.arrayContaining([
          { dagId: 'etl', state: 'queued', pool: 'small', count: 2, poolSlots: 2 },
          { dagId: 'etl', state: 'scheduled', pool: 'small', count: 1, poolSlots: 1 },
        ]),
      );
      expect(snapshot.taskInstances.some((t) => t.state === 'removed')).toBe(false);
    });
  });

  describe('expansions', () => {
    beforeEach(async () => {
      if (newTarget === null) return;
      // The mapped task m not yet expanded (its placeholder), and an upstream a.
      await store.createRun(run('etl', 'r1'), [ti('etl', 'r1', 'a', { state: 'success', tryNumber: 1 }), ti('etl', 'r1', 'm', { state: 'scheduled' })]);
    });

    it('replace the placeholder with the mapped instances, and append an event per inserted row', async () => {
      const before = (await store.eventIdRange())!.last;
      const res = await store.write({ expansions: [expansion('m', [0, 1, 2])] });
      expect(res).toEqual({ expansions: [true], tis: [], runs: [] });
      expect((await tis()).map((t) => [t.taskId, t.mapIndex, t.state])).toEqual([['a', -1, 'success'], ['m', 0, 'scheduled'], ['m', 1, 'scheduled'], ['m', 2, 'scheduled']]);
      expect(await store.getTaskInstance(key('m', 1))).toEqual(mi('m', 1, { state: 'scheduled' }));
      const events = await store.readEvents(before, 100);
      expect(events.map((e) => [e.kind, e.taskId, e.mapIndex, e.state, e.tryNumber])).toEqual([
        ['ti', 'm', 0, 'scheduled', 0],
        ['ti', 'm', 1, 'scheduled', 0],
        ['ti', 'm', 2, 'scheduled', 0],
      ]);
    });

    it('are refused as a whole when the placeholder moved on: nothing inserted, the placeholder kept', async () => {
      // Its state is not expected...
      expect((await store.write({ expansions: [expansion('m', [0, 1], ['none'])] })).expansions).toEqual([false]);
      // ...or it has had a try (try number 1) in an expected state...
      await store.write({ tis: [cas(ti('etl', 'r1', 'm', { state: 'scheduled', tryNumber: 1 }), 0, ['scheduled'])] });
      expect((await store.write({ expansions: [expansion('m', [0, 1])] })).expansions).toEqual([false]);
      // ...or it is not there at all (another task, never created).
      expect((await store.write({ expansions: [expansion('nope', [0])] })).expansions).toEqual([false]);
      expect((await tis()).map((t) => [t.taskId, t.mapIndex, t.tryNumber])).toEqual([['a', -1, 1], ['m', -1, 1]]);
    });

    it('are refused as a whole when a row exists already: nothing inserted, the placeholder and that row kept', async () => {
      await store.write({ expansions: [expansion('m', [1], null)] });
      await store.write({ tis: [cas(mi('m', 1, { state: 'queued', tryNumber: 1 }), 0, ['scheduled'])] });
      const before = (await store.eventIdRange())!.last;
      const res = await store.write({ expansions: [expansion('m', [0, 1, 2])] });
      expect(res.expansions).toEqual([false]);
      expect((await tis()).filter((t) => t.taskId === 'm').map((t) => [t.mapIndex, t.state])).toEqual([[-1, 'scheduled'], [1, 'queued']]);
      expect(await store.readEvents(before, 100)).toEqual([]); // a refused expansion appends nothing
      // The same rows twice in one expansion: refused too.
      expect((await store.write({ expansions: [expansion('m', [5, 5], null)] })).expansions).toEqual([false]);
      expect(await indexesOf('m')).toEqual([-1, 1]);
    });

    it('are refused as a whole however many rows they have: one row there already undoes the thousands before it', async () => {
      await store.write({ expansions: [expansion('m', [1234], null)] });
      const indexes = Array.from({ length: 1500 }, (_, i) => i);
      expect((await store.write({ expansions: [expansion('m', indexes)] })).expansions).toEqual([false]);
      expect(await indexesOf('m')).toEqual([-1, 1234]);
      // The last row (past the whole chunks of SQLite's multi-row insert) there already: the same.
      expect((await store.write({ expansions: [expansion('m', [...indexes.slice(0, 1234), 1234], null)] })).expansions).toEqual([false]);
      expect(await indexesOf('m')).toEqual([-1, 1234]);
    });

    it('without a placeholder, add instances to a task already expanded (growth), once', async () => {
      expect((await store.write({ expansions: [expansion('m', [0, 1])] })).expansions).toEqual([true]);
      expect((await store.write({ expansions: [expansion('m', [2, 3], null)] })).expansions).toEqual([true]);
      expect(await indexesOf('m')).toEqual([0, 1, 2, 3]);
      expect((await store.write({ expansions: [expansion('m', [3, 4], null)] })).expansions).toEqual([false]);
      expect(await indexesOf('m')).toEqual([0, 1, 2, 3]);
      // A placeholder expected once the task is expanded: refused.
      expect((await store.write({ expansions: [expansion('m', [9])] })).expansions).toEqual([false]);
    });

    it('apply before the batch writes: a write may queue an instance the expansion inserts', async () => {
      const queued = (i: number) => mi('m', i, { state: 'queued', tryNumber: 1, queuedAt: 7, queuedBy: 's1' });
      const res = await store.write({
        expansions: [expansion('m', [0, 1])],
        tis: [cas(queued(0), 0, ['scheduled']), cas(queued(1), 0, ['scheduled'])],
      });
      expect(res).toEqual({ expansions: [true], tis: [true, true], runs: [] });
      expect((await tis()).filter((t) => t.taskId === 'm')).toEqual([queued(0), queued(1)]);
      // The events: the inserted rows, then the writes, in the order they applied.
      const events = (await store.readEvents(0, 100)).filter((e) => e.taskId === 'm');
      expect(events.map((e) => [e.mapIndex, e.state])).toEqual([[0, 'scheduled'], [1, 'scheduled'], [0, 'queued'], [1, 'queued']]);
      // A refused expansion: the writes of its rows find nothing to write.
      const refused = await store.write({ expansions: [expansion('m', [2], null), expansion('m', [1], null)], tis: [cas(queued(3), 0, ['scheduled'])] });
      expect(refused).toEqual({ expansions: [true, false], tis: [false], runs: [] });
    });

    it('queue inserted instances within the pool, in the same batch', async () => {
      await store.setPool({ name: 'small', slots: 2, description: null });
      const rows = [0, 1, 2].map((i) => mi('m', i, { state: 'scheduled', pool: 'small' }));
      const res = await store.write({
        expansions: [{ ...expansion('m', []), rows }],
        tis: rows.map((row) => ({ row: { ...row, state: 'queued' as const, tryNumber: 1 }, expect: { tryNumber: 0, states: ['scheduled' as const] }, ifPoolFull: row })),
      });
      expect(res).toEqual({ expansions: [true], tis: [true, true, true], runs: [], poolFull: [2], poolRoom: { small: 0 } });
      expect((await tis()).filter((t) => t.taskId === 'm').map((t) => t.state)).toEqual(['queued', 'queued', 'scheduled']);
    });

    it('apply each on its own in one batch: one refused leaves the others applied', async () => {
      await store.createRun(run('etl', 'r2'), [ti('etl', 'r2', 'm', { state: 'none' })]);
      const res = await store.write({
        expansions: [
          expansion('m', [0, 1]),
          { ...expansion('m', [0]), runId: 'r2', rows: [ti('etl', 'r2', 'm', { mapIndex: 0 })], placeholder: { expectStates: ['running'] } },
          { ...expansion('m', [0, 1]), runId: 'r2', rows: [0, 1].map((i) => ti('etl', 'r2', 'm', { mapIndex: i, state: 'scheduled' })), placeholder: { expectStates: ['none'] } },
          expansion('m', [2, 1], null), // 1 exists: refused, its 2 (written first) undone
          expansion('m', [3], null),
        ],
      });
      expect(res.expansions).toEqual([true, false, true, false, true]);
      expect(await indexesOf('m')).toEqual([0, 1, 3]);
      expect((await store.getTaskInstances('etl', 'r2')).map((t) => t.mapIndex)).toEqual([0, 1]);
    });

    it('with no rows, only delete the placeholder (a task that maps over nothing is not expanded this way, but it is atomic)', async () => {
      expect((await store.write({ expansions: [expansion('m', [])] })).expansions).toEqual([true]);
      expect(await indexesOf('m')).toEqual([]);
      expect((await store.write({ expansions: [expansion('m', [])] })).expansions).toEqual([false]);
      expect((await store.write({ expansions: [] })).expansions).toEqual([]);
    });

    it('apply once when several schedulers expand the same task at once', async () => {
      const stores = [store, await target.open(), await target.open()];
      extra.push(stores[1]!, stores[2]!);
      const results = await Promise.all(stores.map((s) => s.write({ expansions: [expansion('m', [0, 1, 2, 3])] })));
      expect(results.map((r) => r.expansions![0]).filter(Boolean)).toHaveLength(1);
      expect(await indexesOf('m')).toEqual([0, 1, 2, 3]);
      // Growth from several schedulers at once: one wins too.
      const growth = await Promise.all(stores.map((s) => s.write({ expansions: [expansion('m', [4, 5], null)] })));
      expect(growth.map((r) => r.expansions![0]).filter(Boolean)).toHaveLength(1);
      expect(await indexesOf('m')).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('insert 10,000 instances at once, with their events', async () => {
      const indexes = Array.from({ length: 10_000 }, (_, i) => i);
      const e = expansion('m', indexes);
      const started = performance.now();
      const res = await store.write({ expansions: [e] });
      const ms = performance.now() - started;
      expect(res.expansions).toEqual([true]);
      expect(await indexesOf('m')).toEqual(indexes);
      expect((await store.readEvents(0, 20_000)).filter((ev) => ev.taskId === 'm')).toHaveLength(10_000);
      // A bulk insert: one statement per row would be seconds on PostgreSQL. (SQLite: ~50 ms.)
      expect(ms).toBeLessThan(1500);
    });
  });

  describe('XComs', () => {
    beforeEach(async () => {
      if (newTarget === null) return;
      await store.createRun(run('etl', 'r1'), []);
    });

    it('are kept per map index, in one batch and overwritten each on its own', async () => {
      await store.write({ xcoms: [{ ...key('m', 0), value: 'zero' }, { ...key('m', 1), value: { one: 1 } }, { ...key('m'), value: 'unmapped' }] });
      expect(await store.getXcom(key('m', 0))).toBe('zero');
      expect(await store.getXcom(key('m', 1))).toEqual({ one: 1 });
      expect(await store.getXcom(key('m'))).toBe('unmapped');
      expect(await store.getXcom(key('m', -1))).toBe('unmapped');
      expect(await store.getXcom(key('m', 2))).toBeUndefined();
      await store.write({ xcoms: [{ ...key('m', 1), value: 'retried' }, { ...key('m', 1), value: 'retried again' }] });
      expect(await store.getXcom(key('m', 1))).toBe('retried again');
      expect(await store.getXcom(key('m', 0))).toBe('zero');
    });

    it("are read for a whole task in map-index order (getTaskXcoms), that task's and run's only", async () => {
      await store.createRun(run('etl', 'r2'), []);
      await store.write({
        xcoms: [
          { ...key('m', 10), value: 10 },
          { ...key('m', 2), value: [2] },
          { ...key('m', 0), value: undefined },
          { ...key('m', 1), value: null },
          { ...key('other', 3), value: 'other task' },
          { dagId: 'etl', runId: 'r2', taskId: 'm', mapIndex: 4, value: 'other run' },
        ],
      });
      expect(await store.getTaskXcoms('etl', 'r1', 'm')).toEqual([
        { mapIndex: 0, value: undefined },
        { mapIndex: 1, value: null },
        { mapIndex: 2, value: [2] },
        { mapIndex: 10, value: 10 },
      ]);
      expect(await store.getTaskXcoms('etl', 'r1', 'nope')).toEqual([]);
      await store.write({ xcoms: [{ ...key('u'), value: 'one' }] });
      expect(await store.getTaskXcoms('etl', 'r1', 'u')).toEqual([{ mapIndex: -1, value: 'one' }]);
    });
  });

  describe('callbacks and the change feed', () => {
    it('carry the map index: a callback of a mapped instance, null for a DAG callback', async () => {
      await store.createRun(run('etl', 'r1', { state: 'running' }), [mi('m', 3, { state: 'running', tryNumber: 1 })]);
      const cb = (id: string, over: Partial<CallbackRow>): CallbackRow => ({
        id, dagId: 'etl', runId: 'r1', taskId: 'm', mapIndex: 3, tryNumber: 1, kind: 'failure', state: 'failed', reason: null,
        error: 'boom', exitCode: 1, signal: null, createdAt: 1, owner: 's1', ...over,
      });
      await store.write({
        tis: [cas(mi('m', 3, { state: 'failed', tryNumber: 1 }), 1, ['running'])],
        runs: [{ dagId: 'etl', runId: 'r1', expectStates: ['running'], set: { state: 'failed', endedAt: 2 } }],
        callbacks: [{ row: cb('etl/r1/m[3]/1/failure', {}), ifTi: 0 }, { row: cb('etl/r1//failure@2', { taskId: null, mapIndex: null, tryNumber: null, createdAt: 2 }), ifRun: 0 }],
      });
      expect((await store.listCallbacks('etl', 'r1')).map((c) => [c.id, c.taskId, c.mapIndex])).toEqual([
        ['etl/r1/m[3]/1/failure', 'm', 3],
        ['etl/r1//failure@2', null, null],
      ]);
      await store.heartbeatScheduler({ id: 's2', hostname: 'h', pid: 1, startedAt: 1, lastHeartbeatAt: 100 });
      expect((await store.claimCallbacks('s2', 50, 10)).map((c) => c.mapIndex)).toEqual([3, null]);
      const events = await store.readEvents(0, 100);
      expect(events.map((e) => [e.kind, e.taskId, e.mapIndex, e.state])).toEqual([
        ['run', null, null, 'running'],
        ['ti', 'm', 3, 'failed'],
        ['run', null, null, 'failed'],
      ]);
    });
  });

  describe('UI reads', () => {
    beforeEach(async () => {
      if (newTarget === null) return;
      for (let i = 1; i <= 3; i++) {
        const runId = `r${i}`;
        await store.createRun(run('etl', runId, { logicalDate: i * 1000 }), [
          ti('etl', runId, 'a', { peakRssBytes: i }),
          ti('etl', runId, 'm', { mapIndex: 0, peakRssBytes: i * 10 }),
          ti('etl', runId, 'm', { mapIndex: 1, peakRssBytes: i * 100 }),
        ]);
      }
    });

    it("gridRuns returns the page's unmapped instances as rows and its mapped ones counted (mapped-reads.conformance.test.ts has more)", async () => {
      const page = await store.gridRuns('etl', 2);
      expect(page.runs.map((r) => r.runId)).toEqual(['r3', 'r2']);
      expect(page.tis).toEqual([
        { runId: 'r2', taskId: 'a', mapIndex: -1, state: 'none', tryNumber: 0 },
        { runId: 'r3', taskId: 'a', mapIndex: -1, state: 'none', tryNumber: 0 },
      ]);
      expect(page.mapped).toEqual([
        { runId: 'r2', taskId: 'm', state: 'none', count: 2, maxTryNumber: 0 },
        { runId: 'r3', taskId: 'm', state: 'none', count: 2, maxTryNumber: 0 },
      ]);
    });

    it('taskHistory reads one map index (default -1) across the latest runs', async () => {
      const history = async (taskId: string, mapIndex?: number) =>
        (await store.taskHistory('etl', taskId, 2, ...(mapIndex === undefined ? [] : [mapIndex]))).map((h) => [h.runId, h.mapIndex, h.peakRssBytes]);
      expect(await history('m', 1)).toEqual([['r3', 1, 300], ['r2', 1, 200]]);
      expect(await history('m', 0)).toEqual([['r3', 0, 30], ['r2', 0, 20]]);
      expect(await history('a')).toEqual([['r3', -1, 3], ['r2', -1, 2]]);
      expect(await history('m')).toEqual([]);
    });
  });
});
