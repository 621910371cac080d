/**
 * One suite for the Store interface, run against every dialect: SQLite on a temp file, and
 * PostgreSQL in a fresh schema per test (see test/helpers/postgres.ts). Stores are opened
 * through createStore, as kiln opens them.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { CallbackRow, Store, TiRow } from '../../src/store/types.js';
import { storeDialects, type StoreTarget } from './targets.js';
import { fullTi, run, serializedDag, ti } from './fixtures.js';

type Target = StoreTarget;

const dialects = await storeDialects('PostgreSQL store tests', 'kiln_store');

/** An error's message and its causes' (drizzle wraps the driver's error). */
function causeChain(err: unknown): string {
  const messages: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.join(' <- ');
}

describe.each(dialects)('$name store', ({ name, newTarget }) => {
  const it = newTarget === null ? test.skip : test;
  let target: Target;
  let store: Store;
  const extra: Store[] = [];

  /** Another store on the same database, as a second process would have. */
  async function second(): Promise<Store> {
    const s = await target.open();
    extra.push(s);
    return s;
  }

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

  async function seedRun(dagId: string, runId: string, tis: TiRow[], over = {}): Promise<void> {
    expect(await store.createRun(run(dagId, runId, over), tis)).toBe(true);
  }

  it('reports its dialect', () => {
    expect(store.dialect).toBe(name);
  });

  describe('migrate', () => {
    it('is idempotent, also from several stores at once', async () => {
      await store.migrate();
      const [a, b] = [await second(), await second()];
      await Promise.all([a.migrate(), b.migrate(), store.migrate()]);
      expect(await store.listPools()).toEqual([{ name: 'default_pool', slots: 128, description: 'Default pool' }]);
    });

    it('migrates a fresh database concurrently', async () => {
      // The beforeEach store already migrated; use a brand-new target.
      const fresh = await newTarget!();
      const stores = [await fresh.open(), await fresh.open(), await fresh.open()];
      try {
        await Promise.all(stores.map((s) => s.migrate()));
        expect((await stores[0]!.listPools()).map((p) => p.name)).toEqual(['default_pool']);
      } finally {
        for (const s of stores) await s.close();
        await fresh.dispose();
      }
    });

    it('fails clearly before migrate, and works once migrated', async () => {
      const fresh = await newTarget!();
      const s = await fresh.open();
      try {
        await expect(s.listPools()).rejects.toMatchObject({ code: 'STORE', message: expect.stringContaining('kiln db migrate') });
        await s.migrate();
        expect((await s.listPools()).map((p) => p.name)).toEqual(['default_pool']);
      } finally {
        await s.close();
        await fresh.dispose();
      }
    });
  });

  describe('dags', () => {
    it('upserts, lists and keeps every version', async () => {
      const v1 = serializedDag('etl', ['a']);
      const v2 = serializedDag('etl', ['a', 'b']);
      await store.upsertDag({ dagId: 'etl', file: 'dags/etl.ts', version: 'v1', serialized: v1, nextRunAt: 1000 });
      await store.upsertDag({ dagId: 'alpha', file: 'dags/alpha.ts', version: 'x1', serialized: serializedDag('alpha') });

      const first = await store.getDag('etl');
      expect(first).toMatchObject({ dagId: 'etl', file: 'dags/etl.ts', version: 'v1', serialized: v1, isPaused: false, nextRunAt: 1000 });
      expect(typeof first!.updatedAt).toBe('number');

      // A new version without nextRunAt keeps the cursor.
      await store.upsertDag({ dagId: 'etl', file: 'dags/etl2.ts', version: 'v2', serialized: v2 });
      expect(await store.getDag('etl')).toMatchObject({ file: 'dags/etl2.ts', version: 'v2', serialized: v2, nextRunAt: 1000 });
      // An explicit null clears it.
      await store.upsertDag({ dagId: 'etl', file: 'dags/etl2.ts', version: 'v2', serialized: v2, nextRunAt: null });
      expect((await store.getDag('etl'))!.nextRunAt).toBeNull();

      expect(await store.getDagVersion('etl', 'v1')).toEqual(v1);
      expect(await store.getDagVersion('etl', 'v2')).toEqual(v2);
      expect(await store.getDagVersion('etl', 'v3')).toBeUndefined();
      expect(await store.getDag('nope')).toBeUndefined();
      expect((await store.listDags()).map((d) => d.dagId)).toEqual(['alpha', 'etl']);
    });

    it('pauses and unpauses; upsert keeps the pause', async () => {
      await store.upsertDag({ dagId: 'etl', file: 'f', version: 'v1', serialized: serializedDag('etl') });
      expect(await store.setDagPaused('etl', true)).toBe(true);
      await store.upsertDag({ dagId: 'etl', file: 'f', version: 'v2', serialized: serializedDag('etl') });
      expect((await store.getDag('etl'))!.isPaused).toBe(true);
      expect(await store.setDagPaused('etl', false)).toBe(true);
      expect((await store.getDag('etl'))!.isPaused).toBe(false);
      expect(await store.setDagPaused('nope', true)).toBe(false);
    });

    it('advances next_run_at only from the expected value', async () => {
      await store.upsertDag({ dagId: 'etl', file: 'f', version: 'v1', serialized: serializedDag('etl') });
      expect(await store.advanceNextRunAt('etl', 5, 10)).toBe(false);
      expect(await store.advanceNextRunAt('etl', null, 100)).toBe(true);
      expect(await store.advanceNextRunAt('etl', null, 200)).toBe(false); // a second scheduler lost
      expect((await store.getDag('etl'))!.nextRunAt).toBe(100);
      expect(await store.advanceNextRunAt('etl', 100, 1_767_225_600_000)).toBe(true);
      expect(await store.advanceNextRunAt('etl', 1_767_225_600_000, null)).toBe(true);
      expect((await store.getDag('etl'))!.nextRunAt).toBeNull();
      expect(await store.advanceNextRunAt('nope', null, 1)).toBe(false);
    });

    it('deletes dags whose file is gone, keeping their runs and versions', async () => {
      for (const id of ['a', 'b', 'c']) {
        await store.upsertDag({ dagId: id, file: `dags/${id}.ts`, version: 'v1', serialized: serializedDag(id) });
      }
      await seedRun('b', 'r1', [ti('b', 'r1', 'a')]);
      expect(await store.deleteDagsNotIn(['dags/a.ts', 'dags/other.ts'])).toBe(2);
      expect((await store.listDags()).map((d) => d.dagId)).toEqual(['a']);
      expect(await store.getRun('b', 'r1')).toBeDefined();
      expect(await store.getDagVersion('b', 'v1')).toEqual(serializedDag('b'));
      expect(await store.deleteDagsNotIn([])).toBe(1);
      expect(await store.listDags()).toEqual([]);
    });

    it('sets, updates and clears import errors', async () => {
      await store.setImportError('dags/z.ts', 'SyntaxError: z', 1);
      await store.setImportError('dags/a.ts', 'SyntaxError: a', 2);
      await store.setImportError('dags/z.ts', 'TypeError: z again', 3);
      expect(await store.listImportErrors()).toEqual([
        { file: 'dags/a.ts', error: 'SyntaxError: a', at: 2 },
        { file: 'dags/z.ts', error: 'TypeError: z again', at: 3 },
      ]);
      await store.clearImportError('dags/a.ts');
      await store.clearImportError('dags/missing.ts');
      expect((await store.listImportErrors()).map((e) => e.file)).toEqual(['dags/z.ts']);
    });
  });

  describe('runs and task instances', () => {
    it('creates a run with its task instances, and refuses a duplicate without throwing', async () => {
      const tis = [ti('etl', 'r1', 'b'), fullTi('etl', 'r1', 'a')];
      const r = run('etl', 'r1', { runType: 'scheduled', claimedBy: 's1', startedAt: 5 });
      expect(await store.createRun(r, tis)).toBe(true);
      expect(await store.getRun('etl', 'r1')).toEqual(r);
      expect(await store.createRun(run('etl', 'r1', { state: 'failed' }), [ti('etl', 'r1', 'c')])).toBe(false);
      expect(await store.getRun('etl', 'r1')).toEqual(r);
      // Sorted by task id, every field round-trips (bigints, fractions, odd text).
      expect(await store.getTaskInstances('etl', 'r1')).toEqual([fullTi('etl', 'r1', 'a'), ti('etl', 'r1', 'b')]);
      expect(await store.getRun('etl', 'nope')).toBeUndefined();
    });

    it('creates a run with no task instances', async () => {
      expect(await store.createRun(run('etl', 'empty'), [])).toBe(true);
      expect(await store.getTaskInstances('etl', 'empty')).toEqual([]);
    });

    it('rolls back the run when a task instance cannot be inserted', async () => {
      await expect(store.createRun(run('etl', 'r1'), [ti('etl', 'r1', 'a'), ti('etl', 'r1', 'a')])).rejects.toThrow();
      expect(await store.getRun('etl', 'r1')).toBeUndefined();
      expect(await store.getTaskInstances('etl', 'r1')).toEqual([]);
    });

    it('reads the task instances of one run only', async () => {
      await seedRun('etl', 'r1', [ti('etl', 'r1', 'a'), ti('etl', 'r1', 'b')]);
      await seedRun('etl', 'r2', [ti('etl', 'r2', 'a')]);
      await seedRun('other', 'r1', [ti('other', 'r1', 'z')]);
      expect((await store.getTaskInstances('etl', 'r1')).map((t) => t.taskId)).toEqual(['a', 'b']);
      expect(await store.getTaskInstance({ dagId: 'etl', runId: 'r2', taskId: 'a' })).toEqual(ti('etl', 'r2', 'a'));
      expect(await store.getTaskInstance({ dagId: 'etl', runId: 'r2', taskId: 'b' })).toBeUndefined();
    });

    it('filters runs, newest first', async () => {
      await seedRun('etl', 'old', [], { queuedAt: 1000, state: 'success' });
      await seedRun('etl', 'mid', [], { queuedAt: 2000, state: 'running' });
      await seedRun('etl', 'new', [], { queuedAt: 3000, state: 'queued' });
      await seedRun('other', 'x', [], { queuedAt: 2500, state: 'failed' });
      const ids = (rows: { runId: string }[]) => rows.map((r) => r.runId);
      expect(ids(await store.listRuns())).toEqual(['new', 'x', 'mid', 'old']);
      expect(ids(await store.listRuns({ dagId: 'etl' }))).toEqual(['new', 'mid', 'old']);
      expect(ids(await store.listRuns({ states: ['running', 'queued'] }))).toEqual(['new', 'mid']);
      expect(ids(await store.listRuns({ dagId: 'other', states: ['failed'] }))).toEqual(['x']);
      expect(ids(await store.listRuns({ limit: 2 }))).toEqual(['new', 'x']);
      expect(await store.listRuns({ states: [] })).toEqual([]);
      expect((await store.listRuns({ dagId: 'etl', limit: 1 }))[0]).toEqual(run('etl', 'new', { queuedAt: 3000, state: 'queued' }));
    });

    it('counts queued and running runs as active', async () => {
      await seedRun('etl', 'q', [], { state: 'queued' });
      await seedRun('etl', 'r', [], { state: 'running' });
      await seedRun('etl', 's', [], { state: 'success' });
      await seedRun('etl', 'f', [], { state: 'failed' });
      await seedRun('other', 'r', [], { state: 'running' });
      expect(await store.countActiveRuns('etl')).toBe(2);
      expect(await store.countActiveRuns('none')).toBe(0);
    });
  });

  describe('write batches', () => {
    const key = (taskId: string) => ({ dagId: 'etl', runId: 'r1', taskId, mapIndex: -1 });

    beforeEach(async () => {
      if (newTarget === null) return;
      await seedRun('etl', 'r1', [
        ti('etl', 'r1', 'a', { state: 'running', tryNumber: 2, startedAt: 10 }),
        ti('etl', 'r1', 'b', { state: 'queued', tryNumber: 1, queuedAt: 5 }),
        ti('etl', 'r1', 'c', { state: 'none' }),
      ]);
    });

    it('applies a compare-and-set write and rejects a stale try or a wrong state', async () => {
      const done = ti('etl', 'r1', 'a', { state: 'success', tryNumber: 2, startedAt: 10, endedAt: 20, durationMs: 10.5, exitCode: 0 });
      const stale = ti('etl', 'r1', 'a', { state: 'failed', tryNumber: 1, error: 'late event' });
      const wrongState = ti('etl', 'r1', 'b', { state: 'success', tryNumber: 1 });

      const res = await store.write({
        tis: [
          { row: stale, expect: { tryNumber: 1, states: ['running'] } },
          { row: wrongState, expect: { tryNumber: 1, states: ['running'] } },
          { row: done, expect: { tryNumber: 2, states: ['running', 'queued'] } },
        ],
      });
      expect(res).toEqual({ tis: [false, false, true], runs: [] });
      expect(await store.getTaskInstance(key('a'))).toEqual(done);
      expect((await store.getTaskInstance(key('b')))!.state).toBe('queued');
    });

    it('applies a mixed batch of distinct TIs, reporting each write', async () => {
      const a = ti('etl', 'r1', 'a', { state: 'up_for_retry', tryNumber: 2, endedAt: 40, error: 'e', nextRetryAt: 100 });
      const b = ti('etl', 'r1', 'b', { state: 'running', tryNumber: 1, startedAt: 41, pid: 7, isolation: 'thread' });
      const c = ti('etl', 'r1', 'c', { state: 'queued', tryNumber: 1 });
      const res = await store.write({
        tis: [
          { row: { ...c, state: 'scheduled' }, expect: { tryNumber: 0, states: ['queued'] } }, // wrong state
          { row: a, expect: { tryNumber: 2, states: ['running'] } },
          { row: { ...b, tryNumber: 9 }, expect: { tryNumber: 2, states: ['queued'] } }, // stale try
          { row: ti('etl', 'r1', 'zzz'), expect: { tryNumber: 0, states: ['none'] } }, // no such TI
        ],
      });
      expect(res.tis).toEqual([false, true, false, false]);
      expect(await store.getTaskInstances('etl', 'r1')).toEqual([
        a,
        ti('etl', 'r1', 'b', { state: 'queued', tryNumber: 1, queuedAt: 5 }),
        ti('etl', 'r1', 'c', { state: 'none' }),
      ]);
      const again = await store.write({
        tis: [
          { row: b, expect: { tryNumber: 1, states: ['queued'] } },
          { row: c, expect: { tryNumber: 0, states: ['scheduled', 'none'] } },
        ],
      });
      expect(again.tis).toEqual([true, true]);
      expect(await store.getTaskInstances('etl', 'r1')).toEqual([a, b, c]);
    });

    it('applies writes in order: a later write of the same TI sees the earlier one', async () => {
      const queued = ti('etl', 'r1', 'c', { state: 'queued', tryNumber: 1, queuedAt: 7, queuedBy: 's1' });
      const running = { ...queued, state: 'running' as const, startedAt: 8, pid: 123 };
      const res = await store.write({
        tis: [
          { row: queued, expect: { tryNumber: 0, states: ['none', 'scheduled'] } },
          { row: running, expect: { tryNumber: 1, states: ['queued'] } },
          { row: queued, expect: { tryNumber: 0, states: ['none'] } }, // replay of the first: stale now
        ],
      });
      expect(res.tis).toEqual([true, true, false]);
      expect(await store.getTaskInstance(key('c'))).toEqual(running);
    });

    it('writes TIs, runs, xcoms and heartbeats together', async () => {
      const res = await store.write({
        tis: [{ row: ti('etl', 'r1', 'a', { state: 'success', tryNumber: 2, endedAt: 30 }), expect: { tryNumber: 2, states: ['running'] } }],
        runs: [
          { dagId: 'etl', runId: 'r1', expectStates: ['queued'], set: { state: 'running', startedAt: 3 } },
          { dagId: 'etl', runId: 'r1', expectStates: ['queued'], set: { state: 'failed' } },
          { dagId: 'etl', runId: 'nope', expectStates: ['queued', 'running'], set: { state: 'running' } },
        ],
        xcoms: [{ ...key('a'), value: { rows: 3 } }],
        heartbeats: { at: 99, keys: [{ ...key('b'), tryNumber: 1 }] },
      });
      expect(res).toEqual({ tis: [true], runs: [true, false, false] });
      expect(await store.getRun('etl', 'r1')).toMatchObject({ state: 'running', startedAt: 3, endedAt: null });
      expect(await store.getXcom(key('a'))).toEqual({ rows: 3 });
    });

    it('leaves startedAt/endedAt of a run alone unless given', async () => {
      const w = (set: { state: 'running' | 'success'; startedAt?: number | null; endedAt?: number | null }, expectStates: ('queued' | 'running')[]) =>
        store.write({ runs: [{ dagId: 'etl', runId: 'r1', expectStates, set }] });
      await w({ state: 'running', startedAt: 100 }, ['queued']);
      await w({ state: 'running' }, ['running']);
      expect(await store.getRun('etl', 'r1')).toMatchObject({ startedAt: 100, endedAt: null });
      await w({ state: 'success', endedAt: 200 }, ['running']);
      expect(await store.getRun('etl', 'r1')).toMatchObject({ state: 'success', startedAt: 100, endedAt: 200 });
    });

    it('applies all or nothing: a failure inside the batch rolls back the earlier writes and is the error reported', async () => {
      const done = ti('etl', 'r1', 'a', { state: 'success', tryNumber: 2 });
      const b = ti('etl', 'r1', 'b', { state: 'running', tryNumber: 1 });
      await expect(
        store.write({
          tis: [
            { row: done, expect: { tryNumber: 2, states: ['running'] } },
            { row: b, expect: { tryNumber: 1, states: ['queued'] } },
          ],
          // The XCom breaks NOT NULL. On PostgreSQL the statements after it are already sent
          // when it fails, and fail as "transaction aborted": the error must name the cause.
          xcoms: [{ ...key('a'), taskId: null as unknown as string, value: 1 }],
          heartbeats: { at: 77, keys: [{ ...key('b'), tryNumber: 1 }] },
          runs: [{ dagId: 'etl', runId: 'r1', expectStates: ['queued'], set: { state: 'running' } }],
        }),
      ).rejects.toSatisfy((err) => /null/i.test(causeChain(err)) && !/aborted/i.test(causeChain(err)));
      expect((await store.getTaskInstance(key('a')))!.state).toBe('running');
      expect(await store.getTaskInstance(key('b'))).toMatchObject({ state: 'queued', lastHeartbeatAt: null });
      expect(await store.getXcom(key('a'))).toBeUndefined();
      expect((await store.getRun('etl', 'r1'))!.state).toBe('queued');
      // The store is still usable afterwards.
      expect((await store.write({ tis: [{ row: done, expect: { tryNumber: 2, states: ['running'] } }] })).tis).toEqual([true]);
    });

    it('rejects a batch with a value that is not JSON, applying none of it', async () => {
      const done = ti('etl', 'r1', 'a', { state: 'success', tryNumber: 2 });
      await expect(
        store.write({
          tis: [{ row: done, expect: { tryNumber: 2, states: ['running'] } }],
          runs: [{ dagId: 'etl', runId: 'r1', expectStates: ['queued'], set: { state: 'running', startedAt: 1 } }],
          xcoms: [{ ...key('a'), value: 1 }, { ...key('b'), value: { big: 10n } }], // BigInt: not JSON
        }),
      ).rejects.toThrow();
      expect((await store.getTaskInstance(key('a')))!.state).toBe('running');
      expect(await store.getXcom(key('a'))).toBeUndefined();
      expect((await store.getRun('etl', 'r1'))!.state).toBe('queued');
    });

    it('heartbeats only running TIs at the given try', async () => {
      await store.write({
        tis: [{ row: ti('etl', 'r1', 'c', { state: 'running', tryNumber: 1, startedAt: 1 }), expect: { tryNumber: 0, states: ['none'] } }],
      });
      const res = await store.write({
        heartbeats: {
          at: 500,
          keys: [
            { ...key('a'), tryNumber: 2 }, // running at try 2: touched
            { ...key('b'), tryNumber: 1 }, // queued: untouched
            { ...key('c'), tryNumber: 2 }, // running, but at try 1: untouched
            { ...key('zzz'), tryNumber: 1 }, // no such TI
          ],
        },
      });
      expect(res).toEqual({ tis: [], runs: [] });
      const beats = (await store.getTaskInstances('etl', 'r1')).map((t) => [t.taskId, t.lastHeartbeatAt]);
      expect(beats).toEqual([['a', 500], ['b', null], ['c', null]]);
    });

    it('accepts an empty batch', async () => {
      expect(await store.write({})).toEqual({ tis: [], runs: [] });
      expect(await store.write({ tis: [], runs: [], xcoms: [], heartbeats: { at: 1, keys: [] } })).toEqual({ tis: [], runs: [] });
    });
  });

  describe('xcom', () => {
    const key = (taskId: string) => ({ dagId: 'etl', runId: 'r1', taskId });

    it('round-trips JSON values, null and undefined', async () => {
      const values: Record<string, unknown> = {
        nested: { a: [1, 2, { b: 'c', d: [null, true, false] }], e: { f: { g: 1.5 } } },
        text: 'quotes " and \' and \\ and ünïcode ☃',
        num: -42.25,
        zero: 0,
        bool: false,
        arr: [],
        nul: null,
        undef: undefined,
      };
      await store.write({ xcoms: Object.entries(values).map(([taskId, value]) => ({ ...key(taskId), value })) });
      for (const [taskId, value] of Object.entries(values)) {
        expect(await store.getXcom(key(taskId)), taskId).toEqual(value);
      }
      expect(await store.getXcom(key('nul'))).toBeNull();
      expect(await store.getXcom(key('undef'))).toBeUndefined();
      expect(await store.getXcom(key('absent'))).toBeUndefined();
    });

    it('keeps the last value when a batch names a key twice', async () => {
      await store.write({ xcoms: [{ ...key('a'), value: 1 }, { ...key('b'), value: 'b' }, { ...key('a'), value: 2 }] });
      expect(await store.getXcom(key('a'))).toBe(2);
      expect(await store.getXcom(key('b'))).toBe('b');
    });

    it('overwrites a value (a retried task returns again)', async () => {
      await store.write({ xcoms: [{ ...key('a'), value: [1] }] });
      await store.write({ xcoms: [{ ...key('a'), value: { v: 2 } }] });
      expect(await store.getXcom(key('a'))).toEqual({ v: 2 });
      await store.write({ xcoms: [{ ...key('a'), value: undefined }] });
      expect(await store.getXcom(key('a'))).toBeUndefined();
    });
  });

  describe('zombies and stale queued', () => {
    it('finds only running TIs without a recent heartbeat, and queued TIs queued too long', async () => {
      await seedRun('etl', 'r1', [
        ti('etl', 'r1', 'beat-old', { state: 'running', tryNumber: 1, startedAt: 100, lastHeartbeatAt: 200 }),
        ti('etl', 'r1', 'beat-new', { state: 'running', tryNumber: 1, startedAt: 100, lastHeartbeatAt: 2000 }),
        ti('etl', 'r1', 'no-beat-old', { state: 'running', tryNumber: 1, startedAt: 300 }),
        ti('etl', 'r1', 'no-beat-new', { state: 'running', tryNumber: 1, startedAt: 1500 }),
        ti('etl', 'r1', 'done', { state: 'success', tryNumber: 1, startedAt: 1, lastHeartbeatAt: 2 }),
        ti('etl', 'r1', 'q-old', { state: 'queued', tryNumber: 1, queuedAt: 50 }),
        ti('etl', 'r1', 'q-new', { state: 'queued', tryNumber: 1, queuedAt: 1500 }),
      ]);
      const ids = (rows: TiRow[]) => rows.map((t) => t.taskId).sort();
      expect(ids(await store.findZombies(1000, 100))).toEqual(['beat-old', 'no-beat-old']);
      expect(await store.findZombies(1000, 1)).toHaveLength(1);
      expect(await store.findZombies(100, 100)).toEqual([]);
      const [zombie] = await store.findZombies(250, 10);
      expect(zombie).toEqual(ti('etl', 'r1', 'beat-old', { state: 'running', tryNumber: 1, startedAt: 100, lastHeartbeatAt: 200 }));
      expect(ids(await store.findStaleQueued(1000, 100))).toEqual(['q-old']);
      expect(ids(await store.findStaleQueued(2000, 100))).toEqual(['q-new', 'q-old']);
      expect(await store.findStaleQueued(2000, 1)).toHaveLength(1);
    });
  });

  describe('pools', () => {
    it('has default_pool, sets, updates, lists and deletes pools', async () => {
      expect(await store.listPools()).toEqual([{ name: 'default_pool', slots: 128, description: 'Default pool' }]);
      await store.setPool({ name: 'small', slots: 2, description: null });
      await store.setPool({ name: 'big', slots: 10, description: 'GPUs' });
      await store.setPool({ name: 'small', slots: 3, description: 'resized' });
      await store.setPool({ name: 'default_pool', slots: 64, description: null });
      expect(await store.listPools()).toEqual([
        { name: 'big', slots: 10, description: 'GPUs' },
        { name: 'default_pool', slots: 64, description: null },
        { name: 'small', slots: 3, description: 'resized' },
      ]);
      expect(await store.deletePool('big')).toBe(true);
      expect(await store.deletePool('big')).toBe(false);
      await expect(store.deletePool('default_pool')).rejects.toMatchObject({ code: 'STORE' });
      expect((await store.listPools()).map((p) => p.name)).toEqual(['default_pool', 'small']);
    });
  });

  describe('pool slots, taken in the write batch', () => {
    const key = (runId: string, taskId: string) => ({ dagId: 'etl', runId, taskId });
    const scheduled = (runId: string, taskId: string, over: Partial<TiRow> = {}) => ti('etl', runId, taskId, { state: 'scheduled', pool: 'small', ...over });
    /** The write that queues a scheduled TI's next try, falling back to scheduled. */
    const queue = (row: TiRow) => ({
      row: { ...row, state: 'queued' as const, tryNumber: row.tryNumber + 1, queuedAt: 50, queuedBy: 's1' },
      expect: { tryNumber: row.tryNumber, states: ['scheduled' as const] },
      ifPoolFull: row,
    });

    it('queues a try only while its pool has room, after the batch freed its slots, counting every run', async () => {
      await store.setPool({ name: 'small', slots: 3, description: null });
      await seedRun('etl', 'r0', [scheduled('r0', 'busy', { state: 'running', tryNumber: 1 })]);
      const big = scheduled('r1', 'big', { poolSlots: 2 });
      const [q1, q2] = [scheduled('r1', 'q1'), scheduled('r1', 'q2')];
      const other = scheduled('r1', 'other', { pool: 'default_pool' });
      const ending = scheduled('r1', 'ending', { state: 'running', tryNumber: 1 });
      await seedRun('etl', 'r1', [big, q1, q2, other, ending]);

      // 3 slots: 'busy' and 'ending' hold one each, but 'ending' ends in this very batch.
      const res = await store.write({
        tis: [queue(big), { row: { ...ending, state: 'success', endedAt: 60 }, expect: { tryNumber: 1, states: ['running'] } }, queue(q1), queue(q2), queue(other)],
      });
      expect(res).toEqual({ tis: [true, true, true, true, true], runs: [], poolFull: [2, 3], poolRoom: { small: 0, default_pool: 127 } });
      expect((await store.getTaskInstance(key('r1', 'big')))!).toMatchObject({ state: 'queued', tryNumber: 1, queuedBy: 's1' });
      expect(await store.getTaskInstance(key('r1', 'q1'))).toEqual(q1);
      expect(await store.getTaskInstance(key('r1', 'q2'))).toEqual(q2);
      expect((await store.getTaskInstance(key('r1', 'other')))!.state).toBe('queued');

      // 'busy' ends: its slot goes to the first waiting try of the batch.
      const again = await store.write({ tis: [queue(q1), queue(q2), { row: { ...scheduled('r0', 'busy'), state: 'success', tryNumber: 1 }, expect: { tryNumber: 1, states: ['running'] } }] });
      expect(again).toMatchObject({ tis: [true, true, true], poolFull: [1], poolRoom: { small: 0 } });
      expect((await store.getTaskInstance(key('r1', 'q1')))!.state).toBe('queued');
      // A write whose compare-and-set fails takes no slot; a running try holds its slot.
      const [q3, q4] = [scheduled('r1', 'q3'), scheduled('r1', 'q4')];
      await seedRun('etl', 'r2', [{ ...q3, runId: 'r2' }, { ...q4, runId: 'r2' }]);
      await store.setPool({ name: 'small', slots: 5, description: null }); // 3 in use: room for 2
      const third = await store.write({ tis: [queue({ ...q3, runId: 'r2', tryNumber: 5 }), queue({ ...q4, runId: 'r2' })] });
      expect(third).toMatchObject({ tis: [false, true], poolFull: [], poolRoom: { small: 1 } });
    });

    it('gives a pool missing from the table no room', async () => {
      const lost = scheduled('r1', 'lost', { pool: 'nowhere' });
      await seedRun('etl', 'r1', [lost]);
      expect(await store.write({ tis: [queue(lost)] })).toEqual({ tis: [true], runs: [], poolFull: [0], poolRoom: { nowhere: 0 } });
      expect(await store.getTaskInstance(key('r1', 'lost'))).toEqual(lost);
    });

    it('hands each slot out once when several schedulers queue into one pool at once', async () => {
      await store.setPool({ name: 'duo', slots: 2, description: null });
      const schedulers = [store, await second(), await second()];
      for (let round = 0; round < 5; round++) {
        // Each scheduler drives its own run of 3 scheduled tries and queues all of them at once.
        const runs = schedulers.map((_, i) => `r${round}-${i}`);
        for (const runId of runs) await seedRun('etl', runId, ['a', 'b', 'c'].map((t) => scheduled(runId, t, { pool: 'duo' })));
        const results = await Promise.all(
          schedulers.map((s, i) => s.write({ tis: ['a', 'b', 'c'].map((t) => queue(scheduled(runs[i]!, t, { pool: 'duo' }))) })),
        );
        const queued = (await store.findStaleQueued(Number.MAX_SAFE_INTEGER, 100)).filter((t) => t.pool === 'duo');
        expect(queued, `round ${round}`).toHaveLength(2);
        expect(results.reduce((n, r) => n + 3 - r.poolFull!.length, 0), `round ${round}`).toBe(2);
        // The tries end: the next round starts with the pool empty.
        await store.write({ tis: queued.map((t) => ({ row: { ...t, state: 'success' as const }, expect: { tryNumber: t.tryNumber, states: ['queued' as const] } })) });
      }
    });
  });

  describe('run starts under maxActiveRuns', () => {
    const state = async (runId: string) => (await store.getRun('etl', runId))!;

    beforeEach(async () => {
      if (newTarget === null) return;
      await store.upsertDag({ dagId: 'etl', file: 'dags/etl.ts', version: 'v1', serialized: serializedDag('etl') });
    });

    it('starts a queued run the caller holds, only while fewer than maxActiveRuns of its DAG run', async () => {
      await seedRun('etl', 'running', [], { state: 'running', claimedBy: 'B' });
      for (const runId of ['q1', 'q2']) await seedRun('etl', runId, [], { claimedBy: 'A' });
      await seedRun('etl', 'theirs', [], { claimedBy: 'B' });
      await seedRun('other', 'q', [], { claimedBy: 'A' });

      expect(await store.startRun('etl', 'q1', 'A', 2, 100)).toBe(true);
      expect(await state('q1')).toMatchObject({ state: 'running', startedAt: 100, claimedBy: 'A' });
      expect(await store.startRun('etl', 'q2', 'A', 2, 101)).toBe(false); // 2 running
      expect(await state('q2')).toMatchObject({ state: 'queued', startedAt: null });
      expect(await store.startRun('etl', 'theirs', 'A', 5, 102)).toBe(false); // held by B
      expect(await store.startRun('etl', 'q1', 'A', 5, 103)).toBe(false); // no longer queued
      expect(await store.startRun('other', 'q', 'A', 5, 104)).toBe(false); // its DAG is not in the table
      // A run that ends makes room.
      await store.write({ runs: [{ dagId: 'etl', runId: 'running', expectStates: ['running'], set: { state: 'success', endedAt: 110 } }] });
      expect(await store.startRun('etl', 'q2', 'A', 2, 111)).toBe(true);
      expect((await state('q1')).startedAt).toBe(100);
    });

    it('starts no more than maxActiveRuns runs when several schedulers start runs at once', async () => {
      const schedulers = [
        { id: 'A', store },
        { id: 'B', store: await second() },
        { id: 'C', store: await second() },
      ];
      for (const [i, s] of schedulers.entries()) {
        for (let n = 0; n < 4; n++) await seedRun('etl', `${s.id}${n}`, [], { claimedBy: s.id, queuedAt: i * 10 + n });
      }
      const started = await Promise.all(schedulers.flatMap((s) => [0, 1, 2, 3].map((n) => s.store.startRun('etl', `${s.id}${n}`, s.id, 2, 100))));
      expect(started.filter(Boolean)).toHaveLength(2);
      expect(await store.listRuns({ dagId: 'etl', states: ['running'] })).toHaveLength(2);
    });
  });

  describe('schedulers and claims', () => {
    const beat = (s: Store, id: string, at: number) =>
      s.heartbeatScheduler({ id, hostname: 'host', pid: 1000, startedAt: 1, lastHeartbeatAt: at });
    const claimedBy = async (runId: string) => (await store.getRun('etl', runId))!.claimedBy;

    it('claims unclaimed active runs, not finished ones nor those of a live scheduler', async () => {
      await seedRun('etl', 'q', [], { state: 'queued', queuedAt: 1 });
      await seedRun('etl', 'r', [], { state: 'running', queuedAt: 2 });
      await seedRun('etl', 's', [], { state: 'success', queuedAt: 3 });
      await beat(store, 'A', 1000);
      await beat(store, 'B', 1000);

      const a = await store.claimRuns('A', 500, 10);
      expect(a.map((r) => r.runId)).toEqual(['q', 'r']);
      expect(a.every((r) => r.claimedBy === 'A')).toBe(true);
      expect(await claimedBy('q')).toBe('A');
      expect(await claimedBy('s')).toBeNull();

      expect(await store.claimRuns('B', 500, 10)).toEqual([]);
      await seedRun('etl', 'later', [], { queuedAt: 4 });
      expect((await store.claimRuns('B', 500, 10)).map((r) => r.runId)).toEqual(['later']);
      expect((await store.claimRuns('B', 500, 10)).map((r) => r.runId)).toEqual(['later']);
      // A restarted scheduler gets its own runs back.
      expect((await store.claimRuns('A', 500, 10)).map((r) => r.runId)).toEqual(['q', 'r']);
    });

    it('takes over the runs of a dead scheduler, and of one that is gone from the table', async () => {
      await seedRun('etl', 'r1', [], { state: 'running', claimedBy: 'A', queuedAt: 1 });
      await seedRun('etl', 'r2', [], { state: 'running', claimedBy: 'ghost', queuedAt: 2 });
      await beat(store, 'A', 1000);
      await beat(store, 'B', 5000);
      // A is alive (heartbeat 1000 >= deadBefore 1000): only the ghost's run.
      expect((await store.claimRuns('B', 1000, 10)).map((r) => r.runId)).toEqual(['r2']);
      expect(await claimedBy('r1')).toBe('A');
      // A's heartbeat (1000) is now older than deadBefore (4000).
      expect((await store.claimRuns('B', 4000, 10)).map((r) => r.runId)).toEqual(['r1', 'r2']);
      expect(await claimedBy('r1')).toBe('B');
    });

    it('respects the limit, oldest queued first', async () => {
      for (let i = 0; i < 5; i++) await seedRun('etl', `r${i}`, [], { queuedAt: 10 - i });
      await beat(store, 'A', 1000);
      expect((await store.claimRuns('A', 0, 2)).map((r) => r.runId)).toEqual(['r4', 'r3']);
      // Runs already held come back without counting against the limit.
      expect((await store.claimRuns('A', 0, 2)).map((r) => r.runId)).toEqual(['r4', 'r3', 'r2', 'r1']);
      expect((await store.claimRuns('A', 0, 0)).map((r) => r.runId)).toEqual(['r4', 'r3', 'r2', 'r1']);
    });

    it('releases the active runs of a scheduler', async () => {
      await seedRun('etl', 'a1', [], { state: 'running', claimedBy: 'A' });
      await seedRun('etl', 'a2', [], { state: 'success', claimedBy: 'A' });
      await seedRun('etl', 'b1', [], { state: 'running', claimedBy: 'B' });
      await store.releaseRuns('A');
      expect(await claimedBy('a1')).toBeNull();
      expect(await claimedBy('a2')).toBe('A');
      expect(await claimedBy('b1')).toBe('B');
    });

    it('updates a scheduler heartbeat in place', async () => {
      await seedRun('etl', 'r1', [], { state: 'running', claimedBy: 'A' });
      await beat(store, 'A', 100);
      await beat(store, 'A', 2000);
      await beat(store, 'B', 2000);
      expect(await store.claimRuns('B', 1000, 10)).toEqual([]);
    });

    it('never hands one run to two schedulers claiming at the same time', async () => {
      const total = 120;
      const runs = Array.from({ length: total }, (_, i) => `r${String(i).padStart(3, '0')}`);
      for (const [i, runId] of runs.entries()) await seedRun('etl', runId, [], { queuedAt: i });
      const schedulers = [
        { id: 'A', store: await second() },
        { id: 'B', store: await second() },
        { id: 'C', store },
      ];
      for (const s of schedulers) await beat(s.store, s.id, 10_000);

      const got = new Map<string, string[]>(schedulers.map((s) => [s.id, []]));
      for (let round = 0; round < total; round++) {
        const claims = await Promise.all(schedulers.map((s) => s.store.claimRuns(s.id, 5000, 7)));
        let fresh = 0;
        for (const [i, rows] of claims.entries()) {
          const mine = got.get(schedulers[i]!.id)!;
          for (const r of rows) {
            if (mine.includes(r.runId)) continue;
            mine.push(r.runId);
            fresh++;
          }
        }
        if (fresh === 0) break;
      }
      const all = [...got.values()].flat();
      expect(new Set(all).size).toBe(all.length); // no run claimed twice
      expect(all.sort()).toEqual(runs);
      for (const [id, mine] of got) {
        for (const runId of mine) expect(await claimedBy(runId), `${runId} of ${id}`).toBe(id);
      }
    });
  });

  describe('owed callbacks', () => {
    const beat = (s: Store, id: string, at: number) =>
      s.heartbeatScheduler({ id, hostname: 'host', pid: 1000, startedAt: 1, lastHeartbeatAt: at });
    const owed = (id: string, over: Partial<CallbackRow> = {}): CallbackRow => ({
      id, dagId: 'etl', runId: 'r1', taskId: 'a', mapIndex: -1, tryNumber: 1, kind: 'failure', state: 'failed', reason: 'timeout',
      error: 'TASK_TIMEOUT: timed out after 10 ms', exitCode: null, signal: 'SIGTERM', createdAt: 100, owner: 'A', ...over,
    });

    it('inserts a callback only if the write that owes it applied, with the failure reason of the run', async () => {
      await seedRun('etl', 'r1', [ti('etl', 'r1', 'a', { state: 'running', tryNumber: 1 }), ti('etl', 'r1', 'b', { state: 'running', tryNumber: 1 })], { state: 'running' });
      const result = await store.write({
        tis: [
          { row: ti('etl', 'r1', 'a', { state: 'failed', tryNumber: 1 }), expect: { tryNumber: 1, states: ['running'] } },
          // A stale try: its compare-and-set fails, and so its callback is not owed.
          { row: ti('etl', 'r1', 'b', { state: 'failed', tryNumber: 2 }), expect: { tryNumber: 2, states: ['running'] } },
        ],
        runs: [{ dagId: 'etl', runId: 'r1', expectStates: ['running'], set: { state: 'failed', endedAt: 200, failureReason: 'task_failed' } }],
        callbacks: [
          { row: owed('a-cb'), ifTi: 0 },
          { row: owed('b-cb', { taskId: 'b' }), ifTi: 1 },
          { row: owed('dag-cb', { taskId: null, mapIndex: null, tryNumber: null, reason: 'task_failed', error: null, signal: null }), ifRun: 0 },
        ],
      });
      expect(result).toMatchObject({ tis: [true, false], runs: [true] });
      expect((await store.listCallbacks('etl', 'r1')).map((c) => c.id)).toEqual(['a-cb', 'dag-cb']);
      expect((await store.listCallbacks('etl', 'r1'))[0]).toEqual(owed('a-cb'));
      expect((await store.getRun('etl', 'r1'))?.failureReason).toBe('task_failed');
      // The same id again (a write retried after a lost connection) adds nothing; done deletes.
      await store.write({ callbacks: [{ row: owed('a-cb', { createdAt: 999 }) }], callbacksDone: ['dag-cb'] });
      expect(await store.listCallbacks('etl', 'r1')).toEqual([owed('a-cb')]);
      // Clearing the run resets its failure reason.
      await store.write({ runs: [{ dagId: 'etl', runId: 'r1', expectStates: ['failed'], set: { state: 'queued', endedAt: null, failureReason: null } }] });
      expect((await store.getRun('etl', 'r1'))?.failureReason).toBeNull();
    });

    it('hands the callbacks of a dead owner to a live one, once, and releases them at shutdown', async () => {
      await seedRun('etl', 'r1', [], { state: 'failed' });
      await store.write({ callbacks: [{ row: owed('c1', { owner: 'A', createdAt: 1 }) }, { row: owed('c2', { owner: 'ghost', createdAt: 2 }) }, { row: owed('c3', { owner: 'B', createdAt: 3 }) }] });
      await beat(store, 'A', 1000);
      await beat(store, 'B', 5000);
      // A is alive: B takes only the ghost's, and keeps its own.
      expect((await store.claimCallbacks('B', 1000, 10)).map((c) => [c.id, c.owner])).toEqual([['c2', 'B'], ['c3', 'B']]);
      // A died: B takes its callback too; the limit counts only new claims.
      expect((await store.claimCallbacks('B', 4000, 1)).map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
      expect((await store.claimCallbacks('A', 4000, 10)).map((c) => c.id)).toEqual([]);
      await store.releaseRuns('B');
      expect((await store.listCallbacks('etl', 'r1')).map((c) => c.owner)).toEqual([null, null, null]);
      expect(await store.countCallbacks()).toBe(3);
    });

    it('never hands one callback to two schedulers claiming at once', async () => {
      await seedRun('etl', 'r1', [], { state: 'failed' });
      await store.write({ callbacks: Array.from({ length: 30 }, (_, i) => ({ row: owed(`c${String(i).padStart(2, '0')}`, { owner: null, createdAt: i }) })) });
      const stores = [store, await second(), await second()];
      for (const [i, s] of stores.entries()) await beat(s, `S${i}`, 10_000);
      const claims = await Promise.all(stores.map((s, i) => s.claimCallbacks(`S${i}`, 5000, 12)));
      const all = claims.flat().map((c) => c.id);
      expect(new Set(all).size).toBe(all.length);
      expect(all.length).toBe(30);
    });

    it('deletes the callbacks of a run the retention clean deletes', async () => {
      await seedRun('etl', 'old', [], { state: 'failed', endedAt: 10 });
      await store.write({ callbacks: [{ row: owed('c-old', { runId: 'old' }) }] });
      await store.deleteExpiredRuns(100, 10);
      expect(await store.listCallbacks('etl', 'old')).toEqual([]);
    });
  });
});
