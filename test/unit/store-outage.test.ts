/**
 * The database going away under the run engine and the scheduler loop, with a store whose
 * calls fail on demand the way a lost PostgreSQL connection does (StoreUnavailableError).
 * The invariants: nothing is lost (results of tries that end meanwhile are written once it is
 * back, in order), nothing runs twice (no try is queued while it is away; a batch committed
 * just before the connection broke is not mistaken for someone else's change), and only a
 * lost connection is waited out: any other failed write stays fatal.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dag, type DagBuilder } from '../../src/dag/authoring.js';
import { serializeDag } from '../../src/dag/serialize.js';
import { KilnError } from '../../src/errors.js';
import type { TaskWork } from '../../src/protocol/messages.js';
import { RunEngine } from '../../src/scheduler/run-engine.js';
import { initialTaskInstances, RunState } from '../../src/scheduler/run-state.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { Backoff, StoreOutage } from '../../src/scheduler/store-outage.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { createStore } from '../../src/store/index.js';
import { describePgError, isConnectionLost } from '../../src/store/postgres/errors.js';
import { describeSqliteError } from '../../src/store/sqlite/errors.js';
import type { RunRow, Store } from '../../src/store/types.js';
import { FakeExecutor, type ScriptedOutcome } from '../helpers/fake-executor.js';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

/**
 * A real SQLite store behind a switch: `down` makes every call fail as a lost connection
 * does; `commitThenFail` lets the next write commit, then reports a lost connection (the
 * connection broke after COMMIT, before its answer); `refuse` fails writes with a plain error.
 */
class Switch {
  down = false;
  commitThenFail = false;
  refuse: Error | null = null;
  refuseHeartbeat: Error | null = null;
  /** Methods whose next call fails as a lost connection does. */
  readonly failOnce = new Set<string>();
  writes = 0;
  failedWrites = 0;

  wrap(inner: Store): Store {
    return new Proxy(inner, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (prop === 'write') this.writes++;
          if (this.down || this.failOnce.delete(String(prop))) {
            if (prop === 'write') this.failedWrites++;
            throw new StoreUnavailableError('PostgreSQL at test is unreachable: connect ECONNREFUSED');
          }
          if (prop === 'write' && this.refuse) throw this.refuse;
          if (prop === 'heartbeatScheduler' && this.refuseHeartbeat) throw this.refuseHeartbeat;
          const out: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (prop === 'write' && this.commitThenFail) {
            this.commitThenFail = false;
            throw new StoreUnavailableError('PostgreSQL at test is unreachable: Connection terminated unexpectedly');
          }
          return out;
        };
      },
    });
  }
}

/** The fake executor records cancellations itself. */
const SpyExecutor = FakeExecutor;
type SpyExecutor = FakeExecutor;

async function setup(build: (d: DagBuilder) => void, script: (w: TaskWork) => ScriptedOutcome) {
  const inner = await createStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kiln-outage-')), 'kiln.db')}`);
  store = inner;
  await inner.migrate();
  const serialized = serializeDag(dag({ id: 'd', schedule: null }, build));
  await inner.upsertDag({ dagId: 'd', file: '/dev/null', version: 'v1', serialized });
  const sw = new Switch();
  const events = { down: 0, back: 0, errors: [] as unknown[], stale: [] as string[] };
  const outage = new StoreOutage({ onDown: () => events.down++, onBack: () => events.back++ });
  const ref: { engine?: RunEngine } = {};
  const executor = new SpyExecutor({ parallelism: 8, onEvent: (e) => ref.engine!.onExecutorEvent(e) }, script);
  const flaky = sw.wrap(inner);
  const engine = (ref.engine = new RunEngine({
    store: flaky, executor, schedulerId: 'me', logsFolder: '/tmp/kiln-engine-logs', defaultIsolation: 'thread', outage,
    onError: (err) => events.errors.push(err), onRunStale: (r) => events.stale.push(r.run.runId),
  }));
  const row: RunRow = { dagId: 'd', runId: 'r1', runType: 'manual', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, state: 'queued', params: {}, dagVersion: 'v1', queuedAt: Date.now(), startedAt: null, endedAt: null, claimedBy: 'me' };
  const tis = initialTaskInstances('d', 'r1', serialized.tasks);
  await inner.createRun(row, tis);
  const run = new RunState(row, serialized, '/dev/null', tis);
  return { engine, executor, inner, flaky, sw, outage, events, run, serialized };
}

/** Polls (event-loop turns and short timer waits, for the backoff) until `check` holds or 10 s pass. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const hold = (): ScriptedOutcome => ({ outcome: 'hold' });
const key = (taskId: string, tryNumber = 1) => `d/r1/${taskId}/${tryNumber}`;

describe('the run engine while the database is away', () => {
  it('keeps the results of tries that end, queues nothing new, and writes it all once the database is back', async () => {
    const { engine, executor, inner, sw, events, run } = await setup((d) => {
      const a = d.task('a', () => 1);
      d.task('b', () => 1, { upstream: [a] });
      d.task('c', () => 1);
    }, hold);
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 2, 'a and c to run');

    sw.down = true;
    executor.release(key('a'), { outcome: 'success', value: 'from a' });
    await until(() => sw.failedWrites >= 1, 'a write to fail');
    executor.release(key('c'), { outcome: 'failed', message: 'c broke', noRetry: true });
    // Retries back off (100 ms, 200 ms, ...): a few, not a storm.
    await until(() => sw.failedWrites >= 3, 'the write to be retried');
    expect(sw.failedWrites).toBeLessThan(10);
    expect(events.down).toBe(1);
    expect(engine.writesBehind).toBe(true);
    // b is ready in memory, but no try is queued while the database is away.
    expect(executor.submitted.map((w) => w.taskId).sort()).toEqual(['a', 'c']);
    expect((await inner.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'a' }))?.state).not.toBe('success');
    expect(await engine.taskApi.xcom('d', 'r1', 'a')).toBe('from a'); // from memory

    sw.down = false;
    await until(() => executor.heldKeys().includes(key('b')), 'b to be queued once the database is back');
    expect(events.back).toBe(1);
    expect(await inner.getXcom({ dagId: 'd', runId: 'r1', taskId: 'a' })).toBe('from a');
    executor.release(key('b'));
    const done = await engine.whenRunFinished(run);
    expect(done.run.state).toBe('failed');
    const tis = Object.fromEntries((await inner.getTaskInstances('d', 'r1')).map((t) => [t.taskId, t]));
    expect(tis.a).toMatchObject({ state: 'success', tryNumber: 1 });
    expect(tis.b).toMatchObject({ state: 'success', tryNumber: 1 });
    expect(tis.c).toMatchObject({ state: 'failed', tryNumber: 1, error: 'c broke' });
    expect(executor.submitted).toHaveLength(3);
    expect(events.errors).toEqual([]);
    expect(events.stale).toEqual([]);
    expect(engine.writesBehind).toBe(false);
  });

  it('a batch committed just before the connection broke is recognised as its own when retried, not as a change by another process', async () => {
    const { engine, executor, inner, sw, events, run } = await setup((d) => d.chain(d.task('a', () => 1), d.task('b', () => 1)), hold);
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 1, 'a to run');
    sw.commitThenFail = true;
    executor.release(key('a'));
    await until(() => executor.heldKeys().includes(key('b')), 'b to be queued after the retry');
    expect(events.stale).toEqual([]);
    executor.release(key('b'));
    await engine.whenRunFinished(run);
    expect((await inner.getTaskInstances('d', 'r1')).map((t) => [t.taskId, t.state, t.tryNumber])).toEqual([['a', 'success', 1], ['b', 'success', 1]]);
    expect(executor.submitted.map((w) => `${w.taskId}/${w.tryNumber}`)).toEqual(['a/1', 'b/1']);
    expect(executor.cancelled).toEqual([]);
  });

  it('a write refused for another reason stays fatal: reported once, nothing more is written or queued', async () => {
    const { engine, executor, sw, events, run } = await setup((d) => d.chain(d.task('a', () => 1), d.task('b', () => 1)), hold);
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 1, 'a to run');
    const writesBefore = sw.writes;
    sw.refuse = new KilnError('STORE', 'SQLite database /x/kiln.db: database or disk is full (SQLITE_FULL)');
    const finished = engine.whenRunFinished(run);
    executor.release(key('a'));
    await expect(finished).rejects.toThrow(/disk is full/);
    await engine.whenIdle();
    expect(events.errors).toHaveLength(1);
    expect(events.down).toBe(0);
    expect(sw.writes).toBe(writesBefore + 1);
    expect(executor.submitted.map((w) => w.taskId)).toEqual(['a']);
  });

  it('abandonAll (the scheduler is fenced) cancels the running tries and drops the runs; their kept results still go out', async () => {
    const { engine, executor, inner, sw, run } = await setup((d) => {
      d.task('a', () => 1);
      d.task('b', () => 1);
    }, hold);
    engine.adopt(run);
    await until(() => executor.heldKeys().length === 2, 'a and b to run');
    sw.down = true;
    executor.release(key('a'));
    await until(() => sw.failedWrites >= 1, 'a write to fail');
    expect(engine.abandonAll('no heartbeat')).toBe(1);
    expect(executor.cancelled).toEqual([key('b')]);
    expect(engine.hasRun('d', 'r1')).toBe(false);
    expect(engine.isDraining('d', 'r1')).toBe(true); // b's try may still run: the run is not adopted again
    sw.down = false;
    await until(async () => (await inner.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'a' }))?.state === 'success', "a's result to be written");
    expect((await inner.getTaskInstance({ dagId: 'd', runId: 'r1', taskId: 'b' }))?.state).toBe('running');
    executor.release(key('b'));
    await until(() => !engine.isDraining('d', 'r1'), "b's end to be seen");
    expect(executor.submitted).toHaveLength(2);
  });
});

describe('the scheduler loop while the database is away', () => {
  async function schedulerSetup(takeoverAfterMs: number) {
    const s = await setup((d) => d.task('a', () => 1), hold);
    const logs: string[] = [];
    const fenced: string[] = [];
    const scheduler = new Scheduler({
      store: s.flaky, engine: s.engine, schedulerId: 'me', dagSource: { refresh: async () => {} }, poolSlots: new Map(),
      intervalMs: 20, dagDirListIntervalMs: 60_000, zombieTimeoutMs: 60_000, queuedTimeoutMs: 60_000, takeoverAfterMs, maxRuns: 4,
      outage: s.outage, log: (level, m) => logs.push(`${level} ${m}`), onFenced: (r) => fenced.push(r),
    });
    return { ...s, scheduler, logs, fenced };
  }

  it('survives the outage quietly, and past half the takeover time gives its runs up, then claims them again', async () => {
    const { engine, executor, inner, sw, events, scheduler, logs, fenced } = await schedulerSetup(400);
    const running = scheduler.run();
    try {
      await until(() => executor.heldKeys().length === 1, 'the run to be claimed and a to run');
      sw.down = true;
      await until(() => logs.some((l) => l.includes('no heartbeat recorded')), 'the scheduler to fence itself');
      expect(executor.cancelled).toEqual([key('a')]);
      expect(engine.runCount).toBe(0);
      expect(events.down).toBe(1);
      expect(logs.filter((l) => l.startsWith('error'))).toEqual([]); // no "tick failed" per tick
      executor.release(key('a')); // the cancelled try ends
      sw.down = false;
      await until(() => executor.heldKeys().includes(key('a', 2)), 'the run to be adopted again, a with a new try');
      expect(logs.filter((l) => l.includes('heartbeat recorded again'))).toHaveLength(1);
      expect(events.back).toBe(1);
      executor.release(key('a', 2));
      await until(async () => (await inner.getRun('d', 'r1'))?.state === 'success', 'the run to succeed');
      expect(fenced).toEqual([]);
    } finally {
      scheduler.stop();
      await running;
    }
  });

  it('a tick cut short by the outage (after its claims, before adopting) leaves nothing half done: the next tick adopts the run', async () => {
    const { engine, executor, inner, sw, events, scheduler, logs } = await schedulerSetup(60_000);
    sw.failOnce.add('listPools'); // the last read of the first tick, after the run was claimed and started
    const running = scheduler.run();
    try {
      await until(() => executor.heldKeys().length === 1, 'a to run');
      expect(events.down).toBe(1);
      expect(events.back).toBe(1);
      expect(engine.runCount).toBe(1);
      // Started in the database by the first tick, adopted by the next one.
      expect(logs.filter((l) => l.includes('run r1 of DAG d'))).toEqual(['info took over run r1 of DAG d']);
      executor.release(key('a'));
      await until(async () => (await inner.getRun('d', 'r1'))?.state === 'success', 'the run to succeed');
      expect(events.stale).toEqual([]);
      expect(executor.submitted.map((w) => `${w.taskId}/${w.tryNumber}`)).toEqual(['a/1']);
      expect(logs.filter((l) => l.startsWith('error'))).toEqual([]);
    } finally {
      scheduler.stop();
      await running;
    }
  });

  it('a heartbeat the database refuses (not a lost connection) is fatal at once', async () => {
    const { sw, scheduler, fenced, events } = await schedulerSetup(60_000);
    sw.refuseHeartbeat = new KilnError('STORE', 'SQLite database /x/kiln.db: attempt to write a readonly database (SQLITE_READONLY)');
    const running = scheduler.run();
    try {
      await until(() => fenced.length > 0, 'the scheduler to give up');
      expect(fenced[0]).toBe('recording the scheduler heartbeat failed: SQLite database /x/kiln.db: attempt to write a readonly database (SQLITE_READONLY)');
      expect(events.down).toBe(0);
    } finally {
      scheduler.stop();
      await running;
    }
  });
});

describe('store error descriptions', () => {
  it('PostgreSQL: a lost or refused connection is unavailable, anything else is left alone', () => {
    const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });
    for (const e of [withCode('ECONNREFUSED'), withCode('57P01', 'terminating connection due to administrator command'), withCode('57P03'), withCode('08006'), new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect')]) {
      expect(isConnectionLost(e), e.message).toBe(true);
      // drizzle wraps the driver's error: the cause decides, and the driver's message is kept.
      const wrapped = describePgError('postgres://db')(Object.assign(new Error('Failed query: select 1'), { cause: e }));
      expect(wrapped).toBeInstanceOf(StoreUnavailableError);
      expect((wrapped as Error).message).toBe(`PostgreSQL at postgres://db is unreachable: ${e.message}`);
    }
    for (const e of [withCode('23505', 'duplicate key'), withCode('42601', 'syntax error'), withCode('42P01'), new Error('Cannot use a pool after calling end on the pool')]) {
      expect(isConnectionLost(e), e.message).toBe(false);
      expect(describePgError('postgres://db')(e)).toBe(e);
    }
  });

  it('SQLite: errors about the file name it; errors about a statement are left alone', () => {
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const described = describeSqliteError('/data/kiln.db')(full) as KilnError;
    expect(described.code).toBe('STORE');
    expect(described.message).toBe('SQLite database /data/kiln.db: database or disk is full (SQLITE_FULL)');
    expect(described.cause).toBe(full);
    const io = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' });
    expect((describeSqliteError('/data/kiln.db')(io) as Error).message).toContain('/data/kiln.db');
    const constraint = Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect(describeSqliteError('/data/kiln.db')(constraint)).toBe(constraint);
  });

  it('the outage is reported once per outage, and retries back off to at most 5 s', () => {
    const seen: string[] = [];
    const outage = new StoreOutage({ onDown: () => seen.push('down'), onBack: () => seen.push('back') });
    const lost = new StoreUnavailableError('gone');
    expect(outage.failed(new Error('syntax'))).toBe(false);
    expect(outage.failed(lost)).toBe(true);
    expect(outage.failed(lost)).toBe(true);
    outage.ok();
    outage.ok();
    expect(outage.failed(lost)).toBe(true);
    expect(seen).toEqual(['down', 'back', 'down']);
    expect(outage.generation).toBe(2);
    const backoff = new Backoff();
    expect(Array.from({ length: 9 }, () => backoff.next())).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });
});
