/**
 * The PostgreSQL store: a node-postgres Pool under drizzle-orm/node-postgres.
 *
 * URL: any node-postgres connection string (postgres:// or postgresql://), plus
 * `?schema=NAME` to keep kiln's tables in schema NAME (created by migrate()); see
 * connection.ts for the details, including `options=-c search_path=...`.
 *
 * Prepared statements: a drizzle prepared query is bound to the client it was built on, and
 * one built on the Pool would run each call on whatever connection the pool hands out, never
 * inside our transaction. So the statement set is built once per pooled connection (cached
 * by client), and every call, single statement or transaction, checks out a connection and
 * uses that connection's set. Names are fixed per set; PostgreSQL keeps them per connection,
 * so several stores (or processes) never collide.
 */
import pg from 'pg';
import { and, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { UNMAPPED, type RunState, type SerializedDag } from '../../dag/types.js';
import { KilnError } from '../../errors.js';
import {
  DEFAULT_POOL,
  EXPIRED_RUNS_START,
  decodeXcom,
  mapIndexOf,
  runValues,
  toDagRow,
  toRunRow,
  toTaskStateCounts,
} from '../rows.js';
import { pgBackfills } from './backfills.js';
import type {
  BackfillRow,
  CallbackRow,
  DagRow,
  ExpiredRun,
  ExpiredRunBatch,
  ExpiredRunPage,
  ImportErrorRow,
  PoolRow,
  RunRow,
  SchedulerRow,
  Store,
  TiKey,
  TiRow,
  WriteBatch,
  WriteBatchResult,
  DataInterval,
  DagVersionRow,
} from '../types.js';
import type { MetricsSnapshot } from '../types.js';
import { toMetricsSnapshot } from '../rows.js';
import { describeStoreErrors } from '../errors.js';
import { eventColumns, runEvent } from '../feed.js';
import type { ChangeEvent, GridPageRead, RunCursor, TaskInstancePageQuery, TaskStateCounts } from '../types.js';
import { parsePostgresUrl, type PostgresTarget } from './connection.js';
import { describePgError } from './errors.js';
import { migratePostgres } from './migrate.js';
import { dagRun, dagVersion } from './schema.js';
import { preparePgStatements, type PgStatements } from './statements.js';
import { FEED_CHANNEL } from './feed-statements.js';
import { PgPipeline } from './pipeline.js';
import { affected, applyPgBatch, planPgBatch, tiColumns } from './write-batch.js';

export async function openPostgresStore(url: string): Promise<Store> {
  const target = parsePostgresUrl(url);
  // A lost connection surfaces as StoreUnavailableError: the scheduler waits it out (errors.ts).
  return describeStoreErrors(new PostgresStore(target), describePgError(target.display));
}

type UpsertDag = Parameters<Store['upsertDag']>[0];

/** SQLSTATE 42P01: what every statement fails with before migrate(). */
const UNDEFINED_TABLE = '42P01';

/** Vacuum when dead rows pass this share of live ones (autovacuum's own default scale factor)... */
const VACUUM_DEAD_SHARE = 0.2;
/** ...and at least this many (a small table is cheap to scan anyway). */
const VACUUM_MIN_DEAD_ROWS = 5_000;

class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  /** For the one query built per call (listRuns); it runs on any pooled connection. */
  private readonly poolDb: NodePgDatabase;
  private readonly backfills: ReturnType<typeof pgBackfills>;
  private readonly statements = new WeakMap<pg.PoolClient, PgStatements>();
  private closed = false;

  constructor(private readonly target: PostgresTarget) {
    // connectionTimeoutMillis: a server out of reach fails a call (and the scheduler retries)
    // instead of hanging on the operating system's TCP timeout.
    this.pool = new pg.Pool({ connectionTimeoutMillis: 10_000, ...target.pool, idleTimeoutMillis: 60_000, pipeline: true });
    // An idle connection that dies (say, a server restart) is dropped by the pool; without a
    // listener its 'error' event would crash the process.
    this.pool.on('error', () => {});
    this.poolDb = drizzle({ client: this.pool });
    this.backfills = pgBackfills(this.poolDb);
  }

  /**
   * Checks out a connection and runs `fn` with its statements, inside BEGIN/COMMIT when
   * `transaction`. A connection that failed mid-way (error event, failed ROLLBACK) is
   * destroyed rather than returned to the pool.
   *
   * The connections are pipelined (see pipeline.ts): BEGIN goes out with the transaction's
   * first statements, and COMMIT with whatever `fn` sent through `pipe` without waiting (the
   * write batch's last statements), so a transaction costs no round trip of its own. BEGIN
   * cannot fail while the connection stays up; if it did, pipe's first error would fail the
   * call at COMMIT.
   */
  private async use<T>(transaction: boolean, fn: (s: PgStatements, pipe: PgPipeline) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    const pipe = new PgPipeline();
    try {
      let s = this.statements.get(client);
      if (s === undefined) {
        s = preparePgStatements(drizzle({ client }));
        this.statements.set(client, s);
      }
      if (!transaction) {
        const result = await fn(s, pipe);
        await pipe.flush();
        return result;
      }
      pipe.send(client.query('BEGIN'));
      try {
        const result = await fn(s, pipe);
        pipe.send(client.query('COMMIT'));
        await pipe.flush();
        return result;
      } catch (err) {
        // Every statement sent is answered before ROLLBACK; the first error sent is the cause
        // (the later ones only say the transaction was aborted).
        const first = await pipe.settle();
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw first ?? err;
      }
    } catch (err) {
      if (sqlState(err) === UNDEFINED_TABLE) {
        throw new KilnError('STORE', `PostgreSQL at ${this.target.display} has no kiln schema (run \`kiln db migrate\`)`, { cause: err });
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  private one<T>(fn: (s: PgStatements) => Promise<T>): Promise<T> {
    return this.use(false, fn);
  }

  private tx<T>(fn: (s: PgStatements) => Promise<T>): Promise<T> {
    return this.use(true, fn);
  }

  async migrate(): Promise<void> {
    try {
      await migratePostgres(this.pool, this.target.schema);
    } catch (err) {
      throw new KilnError('STORE', `migrating PostgreSQL at ${this.target.display} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Whether the server runs autovacuum (read once: a server setting, not per session). */
  private autovacuum: Promise<boolean> | null = null;

  async vacuumIfNeeded(): Promise<string[]> {
    this.autovacuum ??= this.pool.query<{ on: string }>(`select current_setting('autovacuum') as on`).then((r) => r.rows[0]?.on === 'on');
    if (await this.autovacuum) return [];
    // Dead rows of kiln's own tables in its schema (search_path), from the statistics collector: cheap.
    const stats = await this.pool.query<{ relname: string; live: string; dead: string }>(
      `select relname, n_live_tup as live, n_dead_tup as dead from pg_stat_user_tables
        where schemaname = current_schema() and relname in ('task_instance', 'dag_run')`,
    );
    const due = stats.rows.filter((r) => Number(r.dead) > Math.max(VACUUM_MIN_DEAD_ROWS, VACUUM_DEAD_SHARE * Number(r.live))).map((r) => r.relname);
    // VACUUM cannot run in a transaction block: each is its own statement on a pool connection.
    for (const table of due) await this.pool.query(`vacuum (analyze, skip_locked) ${table}`);
    return due;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  // DAGs and parsing

  async upsertDag(d: UpsertDag): Promise<void> {
    const now = Date.now();
    const serialized = JSON.stringify(d.serialized);
    await this.tx(async (s) => {
      await s.dagUpsert.execute({
        dagId: d.dagId,
        file: d.file,
        version: d.version,
        serialized,
        nextRunAt: d.nextRunAt ?? null,
        setNextRunAt: d.nextRunAt === undefined ? 0 : 1,
        updatedAt: now,
      });
      await s.dagVersionInsert.execute({ dagId: d.dagId, version: d.version, serialized, createdAt: now });
    });
  }

  async getDag(dagId: string): Promise<DagRow | undefined> {
    const [row] = await this.one((s) => s.dagGet.execute({ dagId }));
    return row === undefined ? undefined : toDagRow(row);
  }

  async listDags(): Promise<DagRow[]> {
    return (await this.one((s) => s.dagList.execute())).map(toDagRow);
  }

  async getDagVersion(dagId: string, version: string): Promise<SerializedDag | undefined> {
    const [row] = await this.one((s) => s.dagVersionGet.execute({ dagId, version }));
    return row === undefined ? undefined : (JSON.parse(row.serialized) as SerializedDag);
  }

  async setDagPaused(dagId: string, paused: boolean): Promise<boolean> {
    return affected(await this.one((s) => s.dagSetPaused.execute({ dagId, paused })));
  }

  async advanceNextRunAt(dagId: string, expect: number | null, next: number | null): Promise<boolean> {
    return affected(await this.one((s) => s.dagAdvanceNextRunAt.execute({ dagId, expect, next })));
  }

  async deleteDagsNotIn(files: string[]): Promise<number> {
    return (await this.one((s) => s.dagDeleteNotIn.execute({ files }))).rowCount ?? 0;
  }

  async setImportError(file: string, error: string, at: number): Promise<void> {
    await this.one((s) => s.importErrorSet.execute({ file, error, at }));
  }

  async clearImportError(file: string): Promise<void> {
    await this.one((s) => s.importErrorClear.execute({ file }));
  }

  async listImportErrors(): Promise<ImportErrorRow[]> {
    return this.one((s) => s.importErrorList.execute());
  }

  // Runs

  /** The run row, then every task instance in one unnest() insert; a duplicate run adds nothing. */
  async createRun(run: RunRow, tis: TiRow[]): Promise<boolean> {
    return this.tx(async (s) => {
      if (!affected(await s.runInsert.execute(runValues(run)))) return false;
      if (tis.length > 0) await s.tiInsertMany.execute(tiColumns(tis));
      await s.eventInsertMany.execute(eventColumns([runEvent(run, run.state)], Date.now()));
      return true;
    });
  }

  async prevSuccessfulInterval(dagId: string, beforeLogicalDate: number): Promise<DataInterval | undefined> {
    const [row] = await this.one((s) => s.runPrevSuccess.execute({ dagId, before: beforeLogicalDate }));
    return row;
  }

  async getRun(dagId: string, runId: string): Promise<RunRow | undefined> {
    const [row] = await this.one((s) => s.runGet.execute({ dagId, runId }));
    return row === undefined ? undefined : toRunRow(row);
  }

  /** Filters vary per call, so this one query is built each time; it is not on the hot path. */
  /** Not on the hot path: built per call. */
  async listDagVersions(dagId: string): Promise<DagVersionRow[]> {
    const runs = sql<number>`(select count(*) from ${dagRun} where ${dagRun.dagId} = ${dagVersion.dagId} and ${dagRun.dagVersion} = ${dagVersion.version})`;
    const rows = await this.poolDb
      .select({ version: dagVersion.version, createdAt: dagVersion.createdAt, runs })
      .from(dagVersion)
      .where(eq(dagVersion.dagId, dagId))
      .orderBy(desc(dagVersion.createdAt), desc(dagVersion.version));
    return rows.map((r) => ({ ...r, runs: Number(r.runs) }));
  }

  async listRuns(filter: { dagId?: string; states?: readonly RunState[]; limit?: number } = {}): Promise<RunRow[]> {
    const where: SQL[] = [];
    if (filter.dagId !== undefined) where.push(eq(dagRun.dagId, filter.dagId));
    if (filter.states !== undefined) where.push(inArray(dagRun.state, [...filter.states]));
    const q = this.poolDb
      .select()
      .from(dagRun)
      .where(and(...where))
      .orderBy(desc(dagRun.queuedAt), desc(dagRun.runId))
      .$dynamic();
    if (filter.limit !== undefined) q.limit(filter.limit);
    return (await q).map(toRunRow);
  }

  async listRunsByLogicalDate(dagId: string, from: number, to: number): Promise<RunRow[]> {
    return this.backfills.listRunsByLogicalDate(dagId, from, to);
  }

  // Backfills

  async createBackfill(row: BackfillRow): Promise<void> {
    await this.backfills.create(row);
  }

  async getBackfill(id: string): Promise<BackfillRow | undefined> {
    return this.backfills.get(id);
  }

  async listSchedulerBackfills(deadBefore: number): Promise<BackfillRow[]> {
    return this.backfills.listForSchedulers(deadBefore);
  }

  async advanceBackfill(id: string, expectCursor: number, next: { cursor: number; state: BackfillRow['state']; driver: string | null }): Promise<boolean> {
    return this.backfills.advance(id, expectCursor, next);
  }

  async countActiveRuns(dagId: string): Promise<number> {
    const [row] = await this.one((s) => s.runCountActive.execute({ dagId }));
    return row?.n ?? 0;
  }

  async startRun(dagId: string, runId: string, schedulerId: string, maxActiveRuns: number, now: number): Promise<boolean> {
    return this.tx(async (s) => {
      if ((await s.dagLock.execute({ dagId })).length === 0) return false;
      if (!affected(await s.runStart.execute({ dagId, runId, schedulerId, maxActiveRuns, now }))) return false;
      await s.eventInsertMany.execute(eventColumns([runEvent({ dagId, runId }, 'running')], Date.now()));
      return true;
    });
  }

  // Task instances

  async getTaskInstances(dagId: string, runId: string): Promise<TiRow[]> {
    return this.one((s) => s.tisOfRun.execute({ dagId, runId }));
  }

  async getTaskInstance(key: TiKey): Promise<TiRow | undefined> {
    const [row] = await this.one((s) => s.tiGet.execute({ dagId: key.dagId, runId: key.runId, taskId: key.taskId, mapIndex: mapIndexOf(key) }));
    return row;
  }

  async taskInstancesOf(dagId: string, runId: string, taskId: string, page: TaskInstancePageQuery = {}): Promise<TiRow[]> {
    const range = { dagId, runId, taskId, offset: page.offset ?? 0, limit: page.limit ?? null };
    const states = page.states;
    return this.one((s) => (states === undefined ? s.tisOfTask.execute(range) : s.tisOfTaskInStates.execute({ ...range, states: [...states] })));
  }

  async taskStateCounts(dagId: string, runId: string, taskId: string): Promise<TaskStateCounts> {
    return toTaskStateCounts(await this.one((s) => s.tiStateCountsOfTask.execute({ dagId, runId, taskId })));
  }

  /** See write-batch.ts. */
  async write(batch: WriteBatch): Promise<WriteBatchResult> {
    const plan = planPgBatch(batch);
    if (plan === null) return batch.expansions === undefined ? { tis: [], runs: [] } : { expansions: [], tis: [], runs: [] };
    return this.use(plan.transaction, (s, pipe) => applyPgBatch(s, batch, plan, pipe));
  }

  async findZombies(before: number, limit: number): Promise<TiRow[]> {
    return this.one((s) => s.tiZombies.execute({ before, limit }));
  }

  async findStaleQueued(before: number, limit: number): Promise<TiRow[]> {
    return this.one((s) => s.tiStaleQueued.execute({ before, limit }));
  }

  // XCom

  async getXcom(key: TiKey): Promise<unknown> {
    const [row] = await this.one((s) => s.xcomGet.execute({ dagId: key.dagId, runId: key.runId, taskId: key.taskId, mapIndex: mapIndexOf(key) }));
    return decodeXcom(row?.value);
  }

  async getTaskXcoms(dagId: string, runId: string, taskId: string): Promise<Array<{ mapIndex: number; value: unknown }>> {
    const rows = await this.one((s) => s.xcomsOfTask.execute({ dagId, runId, taskId }));
    return rows.map((x) => ({ mapIndex: x.mapIndex, value: decodeXcom(x.value) }));
  }

  // Pools

  async setPool(p: PoolRow): Promise<void> {
    await this.one((s) => s.poolSet.execute({ name: p.name, slots: p.slots, description: p.description ?? null }));
  }

  async deletePool(name: string): Promise<boolean> {
    if (name === DEFAULT_POOL) throw new KilnError('STORE', `the pool '${DEFAULT_POOL}' cannot be deleted`);
    return affected(await this.one((s) => s.poolDelete.execute({ name })));
  }

  async listPools(): Promise<PoolRow[]> {
    return this.one((s) => s.poolList.execute());
  }

  // Schedulers

  async heartbeatScheduler(row: SchedulerRow): Promise<void> {
    await this.one((s) => s.schedulerHeartbeat.execute({ ...row }));
  }

  /** In a transaction: claim new runs, then read back everything this scheduler holds. */
  async claimRuns(schedulerId: string, deadBefore: number, limit: number): Promise<RunRow[]> {
    const rows = await this.tx(async (s) => {
      if (limit > 0) await s.runClaim.execute({ schedulerId, deadBefore, limit });
      return s.runsHeldBy.execute({ schedulerId });
    });
    return rows.map(toRunRow);
  }

  async releaseRuns(schedulerId: string): Promise<void> {
    await this.one((s) => s.runRelease.execute({ schedulerId }));
    await this.one((s) => s.callbackRelease.execute({ owner: schedulerId }));
  }

  async claimCallbacks(owner: string, deadBefore: number, limit: number): Promise<CallbackRow[]> {
    return this.tx(async (s) => {
      if (limit > 0) await s.callbackClaim.execute({ owner, deadBefore, limit });
      return s.callbacksHeldBy.execute({ owner });
    });
  }

  async listCallbacks(dagId: string, runId: string): Promise<CallbackRow[]> {
    return this.one((s) => s.callbacksOfRun.execute({ dagId, runId }));
  }

  async countCallbacks(): Promise<number> {
    const [row] = await this.one((s) => s.callbackCount.execute());
    return row?.n ?? 0;
  }

  // Retention

  async findExpiredRuns(endedBefore: number, limit: number, after?: ExpiredRun): Promise<ExpiredRunPage> {
    const cursor = after === undefined ? EXPIRED_RUNS_START : { afterEndedAt: after.endedAt, afterDagId: after.dagId, afterRunId: after.runId };
    const rows = await this.one((s) => s.runsExpired.execute({ before: endedBefore, limit, ...cursor }));
    return {
      runs: rows,
      taskInstances: rows.reduce((n, r) => n + r.taskInstances, 0),
      xcoms: rows.reduce((n, r) => n + r.xcoms, 0),
    };
  }

  /**
   * One transaction per batch, and nothing in it waits for another transaction: the runs are
   * locked SKIP LOCKED (two cleaners take disjoint batches), then their task instances, and a
   * run with a task instance someone else holds right now is left out of this batch.
   */
  async deleteExpiredRuns(endedBefore: number, limit: number): Promise<ExpiredRunBatch> {
    return this.tx(async (s) => {
      let runs: ExpiredRun[] = await s.runsExpiredLock.execute({ before: endedBefore, limit });
      if (runs.length === 0) return { runs, taskInstances: 0, xcoms: 0 };
      const busy = await s.runsWithBusyTis.execute(runKeyColumns(runs));
      if (busy.length > 0) {
        const skip = new Set(busy.map((b) => `${b.dagId}\0${b.runId}`));
        runs = runs.filter((r) => !skip.has(`${r.dagId}\0${r.runId}`));
        if (runs.length === 0) return { runs, taskInstances: 0, xcoms: 0 };
      }
      const keys = runKeyColumns(runs);
      const xcoms = (await s.xcomsDeleteOfRuns.execute(keys)).rowCount ?? 0;
      const taskInstances = (await s.tisDeleteOfRuns.execute(keys)).rowCount ?? 0;
      await s.callbacksDeleteOfRuns.execute(keys);
      await s.runsDelete.execute(keys);
      return { runs, taskInstances, xcoms };
    });
  }

  // Metrics

  async metricsSnapshot(): Promise<MetricsSnapshot> {
    return toMetricsSnapshot(await this.one((s) => s.metricsSnapshot.execute()));
  }

  // The change feed and the web UI's reads

  async readEvents(afterId: number, limit: number): Promise<ChangeEvent[]> {
    return this.one((s) => s.eventsAfter.execute({ after: afterId, limit }));
  }

  async eventIdRange(): Promise<{ first: number; last: number } | null> {
    const [r] = await this.one((s) => s.eventRange.execute());
    return r?.first == null || r.last == null || Number.isNaN(r.first) ? null : { first: r.first, last: r.last };
  }

  async trimEvents(before: number, limit: number): Promise<number> {
    const range = await this.eventIdRange();
    if (range === null) return 0;
    const [kept] = await this.one((s) => s.eventFirstKept.execute({ before }));
    const below = Math.min(kept?.id ?? range.last, range.last, range.first + limit);
    return (await this.one((s) => s.eventDeleteBelow.execute({ below }))).rowCount ?? 0;
  }

  /** Three statements on one connection; the unmapped rows before the counts (see GridPageRead). */
  async gridRuns(dagId: string, limit: number, before?: RunCursor): Promise<GridPageRead> {
    return this.one(async (s) => {
      const runs = (await s.gridRuns.execute({ dagId, limit, beforeDate: before?.logicalDate ?? Number.MAX_SAFE_INTEGER, beforeRunId: before?.runId ?? '' })).map(toRunRow);
      if (runs.length === 0) return { runs, tis: [], mapped: [] };
      const page = { dagId, runIds: runs.map((r) => r.runId) };
      const tis = await s.gridTis.execute(page);
      return { runs, tis, mapped: await s.gridMapped.execute(page) };
    });
  }

  async listSchedulers(): Promise<SchedulerRow[]> {
    return this.one((s) => s.schedulerList.execute());
  }

  async taskHistory(dagId: string, taskId: string, limit: number, mapIndex: number = UNMAPPED): Promise<Array<TiRow & { logicalDate: number }>> {
    return (await this.one((s) => s.taskHistory.execute({ dagId, taskId, mapIndex, limit }))).map((r) => ({ ...r.ti, logicalDate: r.logicalDate }));
  }

  /**
   * LISTEN on a connection of its own (outside the pool: a pooled connection would be handed
   * to other work). Every appender notifies FEED_CHANNEL with its schema (feed-statements.ts),
   * delivered at its COMMIT; notifications of other schemas in the same database are ignored.
   */
  async watchEvents(onAppend: () => void, onLost?: (err: Error) => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...this.target.pool });
    let stopped = false;
    client.on('error', (err) => {
      if (!stopped) onLost?.(err);
      stopped = true;
    });
    await client.connect();
    try {
      const schema = (await client.query<{ s: string }>('select current_schema() as s')).rows[0]!.s;
      client.on('notification', (n) => {
        if (n.channel === FEED_CHANNEL && n.payload === schema) onAppend();
      });
      await client.query(`LISTEN ${FEED_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return async () => {
      stopped = true;
      await client.end().catch(() => {});
    };
  }
}

/** The SQLSTATE of a pg error, also when drizzle wrapped it (DrizzleQueryError.cause). */
function sqlState(err: unknown): unknown {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return e?.code ?? e?.cause?.code;
}

/** Run keys as two parallel arrays, for the unnest() statements. */
function runKeyColumns(runs: Array<{ dagId: string; runId: string }>): { dagIds: string[]; runIds: string[] } {
  return { dagIds: runs.map((r) => r.dagId), runIds: runs.map((r) => r.runId) };
}
