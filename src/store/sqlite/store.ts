/**
 * The SQLite store: one better-sqlite3 connection (WAL, busy_timeout 5000, synchronous
 * NORMAL). better-sqlite3 is synchronous, so every method does its work at once and returns
 * a settled promise. Multi-statement writes run in BEGIN IMMEDIATE transactions: the write
 * lock is taken up front, so a second process waits (busy_timeout) instead of failing on a
 * read-to-write upgrade.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { and, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { UNMAPPED, type RunState, type SerializedDag } from '../../dag/types.js';
import { KilnError } from '../../errors.js';
import {
  DEFAULT_POOL,
  EXPIRED_RUNS_START,
  decodeXcom,
  mapIndexOf,
  runValues,
  tiValues,
  toDagRow,
  toRunRow,
  toTaskStateCounts,
} from '../rows.js';
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
import { runEvent } from '../feed.js';
import type { ChangeEvent, GridPageRead, RunCursor, TaskInstancePageQuery, TaskStateCounts } from '../types.js';
import { describeSqliteError } from './errors.js';
import { sqliteBackfills } from './backfills.js';
import { appendSqliteEvents } from './feed-statements.js';
import { migrateSqlite } from './migrate.js';
import { dagRun, dagVersion } from './schema.js';
import { prepareSqliteStatements, type SqliteDb, type SqliteStatements } from './statements.js';
import { sqliteBatchWriter } from './write-batch.js';

export async function openSqliteStore(path: string): Promise<Store> {
  // Errors about the file (full disk, read-only, I/O) name it: see errors.ts.
  const describe = describeSqliteError(path);
  try {
    return describeStoreErrors(new SqliteStore(path), describe);
  } catch (err) {
    throw describe(err);
  }
}

class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly sqlite: Database.Database;
  private readonly db: SqliteDb;
  private readonly backfills: ReturnType<typeof sqliteBackfills>;
  /**
   * better-sqlite3 compiles at prepare time, so the tables must exist: prepared when the store
   * opens if the database is migrated, else right after migrate() (or on first use).
   */
  private statements: SqliteStatements | undefined;
  private readonly writeBatchTx: Database.Transaction<(batch: WriteBatch) => WriteBatchResult>;
  private readonly createRunTx: Database.Transaction<(run: RunRow, tis: TiRow[]) => boolean>;
  private readonly upsertDagTx: Database.Transaction<(dag: UpsertDag) => void>;
  private readonly claimRunsTx: Database.Transaction<(schedulerId: string, deadBefore: number, limit: number) => RunRow[]>;
  private readonly claimCallbacksTx: Database.Transaction<(owner: string, deadBefore: number, limit: number) => CallbackRow[]>;
  private readonly deleteExpiredTx: Database.Transaction<(endedBefore: number, limit: number) => ExpiredRunBatch>;
  private readonly gridReadTx: Database.Transaction<(a: { dagId: string; limit: number; before?: RunCursor }) => GridPageRead>;
  private readonly startRunTx: Database.Transaction<(a: { dagId: string; runId: string; schedulerId: string; maxActiveRuns: number; now: number }) => boolean>;

  constructor(private readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
    this.sqlite = new Database(path, { timeout: 5000 });
    this.sqlite.pragma('journal_mode = WAL');
    this.sqlite.pragma('busy_timeout = 5000');
    this.sqlite.pragma('synchronous = NORMAL');
    this.db = drizzle({ client: this.sqlite });
    this.backfills = sqliteBackfills(this.db);
    this.writeBatchTx = sqliteBatchWriter(this.sqlite, () => this.s);
    this.createRunTx = this.sqlite.transaction((run: RunRow, tis: TiRow[]) => this.insertRun(run, tis));
    this.upsertDagTx = this.sqlite.transaction((d: UpsertDag) => this.writeDag(d));
    this.claimRunsTx = this.sqlite.transaction((id: string, deadBefore: number, limit: number) => this.claim(id, deadBefore, limit));
    this.claimCallbacksTx = this.sqlite.transaction((owner: string, deadBefore: number, limit: number) => {
      if (limit > 0) this.s.callbackClaim.run({ owner, deadBefore, limit });
      return this.s.callbacksHeldBy.all({ owner });
    });
    this.deleteExpiredTx = this.sqlite.transaction((endedBefore: number, limit: number) => this.deleteExpired(endedBefore, limit));
    this.gridReadTx = this.sqlite.transaction((a: { dagId: string; limit: number; before?: RunCursor }) => this.gridRead(a));
    this.startRunTx = this.sqlite.transaction((a: { dagId: string; runId: string; schedulerId: string; maxActiveRuns: number; now: number }) => {
      if (this.s.runStart.run(a).changes === 0) return false;
      appendSqliteEvents(this.s, [runEvent(a, 'running')]);
      return true;
    });
    try {
      this.statements = prepareSqliteStatements(this.db);
    } catch {
      // Not migrated yet: prepared by migrate(), or on first use with a clear error.
    }
  }

  private get s(): SqliteStatements {
    if (this.statements === undefined) {
      try {
        this.statements = prepareSqliteStatements(this.db);
      } catch (err) {
        throw new KilnError('STORE', `SQLite database ${this.path} has no kiln schema (run \`kiln db migrate\`)`, { cause: err });
      }
    }
    return this.statements;
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.sqlite);
    this.statements = prepareSqliteStatements(this.db);
  }

  async close(): Promise<void> {
    if (this.sqlite.open) this.sqlite.close();
  }

  // DAGs and parsing

  async upsertDag(d: UpsertDag): Promise<void> {
    this.upsertDagTx.immediate(d);
  }

  private writeDag(d: UpsertDag): void {
    const now = Date.now();
    const serialized = JSON.stringify(d.serialized);
    this.s.dagUpsert.run({
      dagId: d.dagId,
      file: d.file,
      version: d.version,
      serialized,
      nextRunAt: d.nextRunAt ?? null,
      setNextRunAt: d.nextRunAt === undefined ? 0 : 1,
      updatedAt: now,
    });
    this.s.dagVersionInsert.run({ dagId: d.dagId, version: d.version, serialized, createdAt: now });
  }

  async getDag(dagId: string): Promise<DagRow | undefined> {
    const row = this.s.dagGet.get({ dagId });
    return row === undefined ? undefined : toDagRow(row);
  }

  async listDags(): Promise<DagRow[]> {
    return this.s.dagList.all().map(toDagRow);
  }

  async getDagVersion(dagId: string, version: string): Promise<SerializedDag | undefined> {
    const row = this.s.dagVersionGet.get({ dagId, version });
    return row === undefined ? undefined : (JSON.parse(row.serialized) as SerializedDag);
  }

  async setDagPaused(dagId: string, paused: boolean): Promise<boolean> {
    return this.s.dagSetPaused.run({ dagId, paused: paused ? 1 : 0 }).changes > 0;
  }

  async advanceNextRunAt(dagId: string, expect: number | null, next: number | null): Promise<boolean> {
    return this.s.dagAdvanceNextRunAt.run({ dagId, expect, next }).changes > 0;
  }

  async deleteDagsNotIn(files: string[]): Promise<number> {
    return this.s.dagDeleteNotIn.run({ files: JSON.stringify(files) }).changes;
  }

  async setImportError(file: string, error: string, at: number): Promise<void> {
    this.s.importErrorSet.run({ file, error, at });
  }

  async clearImportError(file: string): Promise<void> {
    this.s.importErrorClear.run({ file });
  }

  async listImportErrors(): Promise<ImportErrorRow[]> {
    return this.s.importErrorList.all();
  }

  // Runs

  async createRun(run: RunRow, tis: TiRow[]): Promise<boolean> {
    return this.createRunTx.immediate(run, tis);
  }

  /** In a transaction: the run row, then its task instances; a duplicate run id adds nothing. */
  private insertRun(run: RunRow, tis: TiRow[]): boolean {
    if (this.s.runInsert.run(runValues(run)).changes === 0) return false;
    for (const t of tis) this.s.tiInsert.run(tiValues(t));
    appendSqliteEvents(this.s, [runEvent(run, run.state)]);
    return true;
  }

  async prevSuccessfulInterval(dagId: string, beforeLogicalDate: number): Promise<DataInterval | undefined> {
    return this.s.runPrevSuccess.get({ dagId, before: beforeLogicalDate });
  }

  async getRun(dagId: string, runId: string): Promise<RunRow | undefined> {
    const row = this.s.runGet.get({ dagId, runId });
    return row === undefined ? undefined : toRunRow(row);
  }

  /** Filters vary per call, so this one query is built each time; it is not on the hot path. */
  /** Not on the hot path: built per call. */
  async listDagVersions(dagId: string): Promise<DagVersionRow[]> {
    const runs = sql<number>`(select count(*) from ${dagRun} where ${dagRun.dagId} = ${dagVersion.dagId} and ${dagRun.dagVersion} = ${dagVersion.version})`;
    const rows = this.db
      .select({ version: dagVersion.version, createdAt: dagVersion.createdAt, runs })
      .from(dagVersion)
      .where(eq(dagVersion.dagId, dagId))
      .orderBy(desc(dagVersion.createdAt), desc(dagVersion.version)).all();
    return rows.map((r) => ({ ...r, runs: Number(r.runs) }));
  }

  async listRuns(filter: { dagId?: string; states?: readonly RunState[]; limit?: number } = {}): Promise<RunRow[]> {
    const where: SQL[] = [];
    if (filter.dagId !== undefined) where.push(eq(dagRun.dagId, filter.dagId));
    if (filter.states !== undefined) where.push(inArray(dagRun.state, [...filter.states]));
    const q = this.db
      .select()
      .from(dagRun)
      .where(and(...where))
      .orderBy(desc(dagRun.queuedAt), desc(dagRun.runId))
      .$dynamic();
    if (filter.limit !== undefined) q.limit(filter.limit);
    return q.all().map(toRunRow);
  }

  async countActiveRuns(dagId: string): Promise<number> {
    return this.s.runCountActive.get({ dagId })?.n ?? 0;
  }

  async listRunsByLogicalDate(dagId: string, from: number, to: number): Promise<RunRow[]> {
    return this.backfills.listRunsByLogicalDate(dagId, from, to);
  }

  // Backfills

  async createBackfill(row: BackfillRow): Promise<void> {
    this.backfills.create(row);
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

  async startRun(dagId: string, runId: string, schedulerId: string, maxActiveRuns: number, now: number): Promise<boolean> {
    return this.startRunTx.immediate({ dagId, runId, schedulerId, maxActiveRuns, now });
  }

  // Task instances

  async getTaskInstances(dagId: string, runId: string): Promise<TiRow[]> {
    return this.s.tisOfRun.all({ dagId, runId });
  }

  async getTaskInstance(key: TiKey): Promise<TiRow | undefined> {
    return this.s.tiGet.get({ dagId: key.dagId, runId: key.runId, taskId: key.taskId, mapIndex: mapIndexOf(key) });
  }

  async taskInstancesOf(dagId: string, runId: string, taskId: string, page: TaskInstancePageQuery = {}): Promise<TiRow[]> {
    const range = { dagId, runId, taskId, offset: page.offset ?? 0, limit: page.limit ?? -1 };
    if (page.states === undefined) return this.s.tisOfTask.all(range);
    return this.s.tisOfTaskInStates.all({ ...range, states: JSON.stringify(page.states) });
  }

  async taskStateCounts(dagId: string, runId: string, taskId: string): Promise<TaskStateCounts> {
    return toTaskStateCounts(this.s.tiStateCountsOfTask.all({ dagId, runId, taskId }));
  }

  /** See write-batch.ts. */
  async write(batch: WriteBatch): Promise<WriteBatchResult> {
    const empty = !batch.expansions?.length && !batch.tis?.length && !batch.runs?.length && !batch.xcoms?.length && !batch.heartbeats?.keys.length && !batch.callbacks?.length && !batch.callbacksDone?.length;
    if (empty) return batch.expansions === undefined ? { tis: [], runs: [] } : { expansions: [], tis: [], runs: [] };
    return this.writeBatchTx.immediate(batch);
  }

  async findZombies(before: number, limit: number): Promise<TiRow[]> {
    return this.s.tiZombies.all({ before, limit });
  }

  async findStaleQueued(before: number, limit: number): Promise<TiRow[]> {
    return this.s.tiStaleQueued.all({ before, limit });
  }

  // XCom

  async getXcom(key: TiKey): Promise<unknown> {
    return decodeXcom(this.s.xcomGet.get({ dagId: key.dagId, runId: key.runId, taskId: key.taskId, mapIndex: mapIndexOf(key) })?.value);
  }

  async getTaskXcoms(dagId: string, runId: string, taskId: string): Promise<Array<{ mapIndex: number; value: unknown }>> {
    return this.s.xcomsOfTask.all({ dagId, runId, taskId }).map((x) => ({ mapIndex: x.mapIndex, value: decodeXcom(x.value) }));
  }

  // Pools

  async setPool(p: PoolRow): Promise<void> {
    this.s.poolSet.run({ name: p.name, slots: p.slots, description: p.description ?? null });
  }

  async deletePool(name: string): Promise<boolean> {
    if (name === DEFAULT_POOL) throw new KilnError('STORE', `the pool '${DEFAULT_POOL}' cannot be deleted`);
    return this.s.poolDelete.run({ name }).changes > 0;
  }

  async listPools(): Promise<PoolRow[]> {
    return this.s.poolList.all();
  }

  // Schedulers

  async heartbeatScheduler(row: SchedulerRow): Promise<void> {
    this.s.schedulerHeartbeat.run({ ...row });
  }

  async claimRuns(schedulerId: string, deadBefore: number, limit: number): Promise<RunRow[]> {
    return this.claimRunsTx.immediate(schedulerId, deadBefore, limit);
  }

  /** In a transaction: claim new runs, then read back everything this scheduler holds. */
  private claim(schedulerId: string, deadBefore: number, limit: number): RunRow[] {
    if (limit > 0) this.s.runClaim.run({ schedulerId, deadBefore, limit });
    return this.s.runsHeldBy.all({ schedulerId }).map(toRunRow);
  }

  async vacuumIfNeeded(): Promise<string[]> {
    return []; // SQLite reuses freed pages itself; nothing piles up in the hot queries' way
  }

  async releaseRuns(schedulerId: string): Promise<void> {
    this.s.runRelease.run({ schedulerId });
    this.s.callbackRelease.run({ owner: schedulerId });
  }

  async claimCallbacks(owner: string, deadBefore: number, limit: number): Promise<CallbackRow[]> {
    return this.claimCallbacksTx.immediate(owner, deadBefore, limit);
  }

  async listCallbacks(dagId: string, runId: string): Promise<CallbackRow[]> {
    return this.s.callbacksOfRun.all({ dagId, runId });
  }

  async countCallbacks(): Promise<number> {
    return Number(this.s.callbackCount.get()?.n ?? 0);
  }

  // Retention

  async findExpiredRuns(endedBefore: number, limit: number, after?: ExpiredRun): Promise<ExpiredRunPage> {
    const cursor = after === undefined ? EXPIRED_RUNS_START : { afterEndedAt: after.endedAt, afterDagId: after.dagId, afterRunId: after.runId };
    const rows = this.s.runsExpired.all({ before: endedBefore, limit, ...cursor });
    return {
      runs: rows,
      taskInstances: rows.reduce((n, r) => n + r.taskInstances, 0),
      xcoms: rows.reduce((n, r) => n + r.xcoms, 0),
    };
  }

  /**
   * One BEGIN IMMEDIATE transaction per batch: SQLite has one writer, so nothing can change
   * the selected runs between the select and the deletes, and the caller keeps batches small
   * so a scheduler waiting for the write lock waits one batch at most.
   */
  async deleteExpiredRuns(endedBefore: number, limit: number): Promise<ExpiredRunBatch> {
    return this.deleteExpiredTx.immediate(endedBefore, limit);
  }

  private deleteExpired(endedBefore: number, limit: number): ExpiredRunBatch {
    const s = this.s;
    const runs = s.runsExpired.all({ before: endedBefore, limit, ...EXPIRED_RUNS_START }).map((r) => ({ dagId: r.dagId, runId: r.runId, endedAt: r.endedAt }));
    let taskInstances = 0;
    let xcoms = 0;
    for (const key of runs) {
      const k = { dagId: key.dagId, runId: key.runId };
      taskInstances += s.tisDeleteOfRun.run(k).changes;
      xcoms += s.xcomsDeleteOfRun.run(k).changes;
      s.callbacksDeleteOfRun.run(k);
      s.runDelete.run(k);
    }
    return { runs, taskInstances, xcoms };
  }

  // Metrics

  async metricsSnapshot(): Promise<MetricsSnapshot> {
    return toMetricsSnapshot(this.s.metricsSnapshot.all());
  }

  // The change feed and the web UI's reads

  async readEvents(afterId: number, limit: number): Promise<ChangeEvent[]> {
    return this.s.eventsAfter.all({ after: afterId, limit });
  }

  async eventIdRange(): Promise<{ first: number; last: number } | null> {
    const r = this.s.eventRange.get();
    return r?.first == null || r.last == null ? null : { first: r.first, last: r.last };
  }

  async trimEvents(before: number, limit: number): Promise<number> {
    const range = await this.eventIdRange();
    if (range === null) return 0;
    const keepFrom = this.s.eventFirstKept.get({ before })?.id ?? range.last;
    const below = Math.min(keepFrom, range.last, range.first + limit);
    return this.s.eventDeleteBelow.run({ below }).changes;
  }

  async gridRuns(dagId: string, limit: number, before?: RunCursor): Promise<GridPageRead> {
    return this.gridReadTx({ dagId, limit, before });
  }

  /** In one read transaction (a deferred BEGIN): the page's three statements see one snapshot. */
  private gridRead(a: { dagId: string; limit: number; before?: RunCursor }): GridPageRead {
    const { dagId, limit, before } = a;
    const runs = this.s.gridRuns.all({ dagId, limit, beforeDate: before?.logicalDate ?? Number.MAX_SAFE_INTEGER, beforeRunId: before?.runId ?? '' }).map(toRunRow);
    if (runs.length === 0) return { runs, tis: [], mapped: [] };
    const page = { dagId, runIds: JSON.stringify(runs.map((r) => r.runId)) };
    return { runs, tis: this.s.gridTis.all(page), mapped: this.s.gridMapped.all(page) };
  }

  async listSchedulers(): Promise<SchedulerRow[]> {
    return this.s.schedulerList.all();
  }

  async taskHistory(dagId: string, taskId: string, limit: number, mapIndex: number = UNMAPPED): Promise<Array<TiRow & { logicalDate: number }>> {
    return this.s.taskHistory.all({ dagId, taskId, mapIndex, limit }).map((r) => ({ ...r.ti, logicalDate: r.logicalDate }));
  }

  async watchEvents(): Promise<null> {
    return null; // SQLite cannot tell another connection about a commit: readers poll the feed by id
  }
}

type UpsertDag = Parameters<Store['upsertDag']>[0];
