/**
 * The metadata store: one interface, one implementation per SQL dialect (store/sqlite,
 * store/postgres). Hot-path statements are prepared once when the store opens. Times are
 * epoch milliseconds everywhere.
 *
 * Task-instance writes are compare-and-set on (task instance, try number, expected states):
 * a late event from a stale try, or from a scheduler that lost its claim, changes nothing.
 */
import type { CallbackKind, FailureReason, Isolation, RunState, SerializedDag, TiState } from '../dag/types.js';

export type Dialect = 'sqlite' | 'postgres';

export interface DagRow {
  dagId: string;
  file: string;
  /** Content hash of the DAG file this row was parsed from. */
  version: string;
  serialized: SerializedDag;
  isPaused: boolean;
  /** The next scheduled logical date not yet created as a run (epoch ms), or null. */
  nextRunAt: number | null;
  updatedAt: number;
}

export type RunType = 'manual' | 'scheduled' | 'backfill';

export interface RunRow {
  dagId: string;
  runId: string;
  runType: RunType;
  /** For scheduled and backfill runs the start of the data interval; for manual runs the trigger time (or --logical-date). */
  logicalDate: number;
  /** The data interval [start, end) the run covers; set when the run is created, never recomputed. */
  dataIntervalStart: number;
  dataIntervalEnd: number;
  state: RunState;
  params: Record<string, unknown>;
  dagVersion: string;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  /** The scheduler currently driving this run (HA), or null. */
  claimedBy: string | null;
  /** Why a failed run failed (`task_failed`, `timed_out`); null otherwise. Optional when building a row. */
  failureReason?: string | null;
}

/** What a backfill does to a date that already has a finished run (see scheduler/backfill.ts). */
export const REPROCESS_MODES = ['none', 'failed', 'completed'] as const;
export type Reprocess = (typeof REPROCESS_MODES)[number];

/** A stored backfill request (see scheduler/backfill.ts). */
export interface BackfillRow {
  id: string;
  dagId: string;
  /** The range asked for, inclusive, epoch ms. */
  fromDate: number;
  toDate: number;
  reprocess: Reprocess;
  maxActiveRuns: number;
  backwards: boolean;
  /** The params every run of the backfill gets (validated when it was made). */
  params: Record<string, unknown>;
  /** The logical dates, in the order their runs are made. */
  dates: number[];
  /** How many dates have had their turn. */
  cursor: number;
  /** The `kiln backfill` process driving it (its owner id), or null: the schedulers drive it. */
  driver: string | null;
  state: 'running' | 'done';
  createdAt: number;
}

export interface DagVersionRow {
  version: string;
  /** When this version was first parsed (epoch ms). */
  createdAt: number;
  runs: number;
}

export interface DataInterval {
  dataIntervalStart: number;
  dataIntervalEnd: number;
}

export interface TiRow {
  dagId: string;
  runId: string;
  taskId: string;
  /** The instance's index in its mapped task; -1 (UNMAPPED) for a task that is not mapped, or a mapped task not yet expanded. */
  mapIndex: number;
  state: TiState;
  /** 0 before the first try; incremented when a try is queued. */
  tryNumber: number;
  /** retries + 1 */
  maxTries: number;
  pool: string;
  poolSlots: number;
  priorityWeight: number;
  isolation: Isolation | null;
  queuedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  durationMs: number | null;
  pid: number | null;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  peakRssBytes: number | null;
  cpuMs: number | null;
  lastHeartbeatAt: number | null;
  /** Id of the scheduler that queued the current try. */
  queuedBy: string | null;
  /** up_for_retry: when the next try may start; up_for_reschedule: when the sensor is poked again. */
  nextRetryAt: number | null;
  /** A sensor's first poke (its timeout counts from there); null otherwise. Optional when building a row. */
  firstPokeAt?: number | null;
}

export interface TiKey {
  dagId: string;
  runId: string;
  taskId: string;
  /** Absent: -1, the task instance of a task that is not mapped. */
  mapIndex?: number;
}

/** Overwrites the task instance's mutable fields with `row`, only if it still is at `expect`. */
export interface TiWrite {
  row: TiRow;
  expect: { tryNumber: number; states: readonly TiState[] };
  /**
   * Set on a write that queues a try (`row` queued): `row` takes `row.poolSlots` slots of
   * `row.pool` only if the pool still has them, counting every queued and running task
   * instance of every scheduler in the same transaction; otherwise this row is written
   * instead (same expectation), so the task instance stays scheduled. See WriteBatch.
   */
  ifPoolFull?: TiRow;
}

export interface RunWrite {
  dagId: string;
  runId: string;
  expectStates: readonly RunState[];
  /** Fields left undefined are left as they are. */
  set: { state: RunState; startedAt?: number | null; endedAt?: number | null; failureReason?: string | null; claimedBy?: string | null };
}

/**
 * Expands a mapped task (migrations/0008): inserts `rows` (new map indexes, state scheduled or
 * none), and with `placeholder` first deletes the task's unexpanded instance (map index -1)
 * only if it still is at `placeholder.expectStates` (try number 0). Applies all or nothing:
 * false if the placeholder was not there in those states, or any of `rows` exists already
 * (another scheduler expanded it first). Applied before the batch's `tis` writes, so they may
 * queue instances this expansion inserts.
 */
export interface TiExpansion {
  dagId: string;
  runId: string;
  taskId: string;
  placeholder: { expectStates: readonly TiState[] } | null;
  rows: TiRow[];
}

/**
 * A callback that is owed (see scheduler/callbacks.ts): written in the same transaction as
 * the state change that owes it, deleted once it has run. Whoever holds `owner` runs it; a
 * callback whose owner died is claimed by a live scheduler (claimCallbacks).
 */
export interface CallbackRow {
  /** Unique per occasion: `<dag>/<run>/<task>/<try>/<kind>` for a task (`<task>[<mapIndex>]` for a mapped instance), `<dag>/<run>//<kind>@<ended at>` for a run. */
  id: string;
  dagId: string;
  runId: string;
  /** null: a DAG callback. */
  taskId: string | null;
  /** migrations/0008: the task instance's map index (-1 unmapped); null for a DAG callback. */
  mapIndex: number | null;
  tryNumber: number | null;
  kind: CallbackKind;
  /** The task instance's (or run's) state after the change. */
  state: string;
  reason: FailureReason | null;
  error: string | null;
  exitCode: number | null;
  signal: string | null;
  createdAt: number;
  owner: string | null;
}

/** A callback to insert only if the write it comes from applied (index into WriteBatch.tis or .runs). */
export interface CallbackWrite {
  row: CallbackRow;
  ifTi?: number;
  ifRun?: number;
}

export interface XcomWrite extends TiKey {
  value: unknown;
}

/**
 * One transaction's worth of writes (one scheduler tick or one batch of executor events).
 *
 * Pool slots are taken here, exactly, also with several schedulers on one database: the
 * writes with `ifPoolFull` are applied after every other task-instance write of the batch
 * (so slots the batch frees are free), in batch order, each only while its pool has room.
 * PostgreSQL locks the rows of those pools first (SELECT ... FOR UPDATE, in name order) and
 * counts the slots in use after the lock is held, so schedulers queueing into one pool take
 * turns and each sees what the previous one committed; SQLite has one writer.
 */
export interface WriteBatch {
  /** Applied first, each all or nothing (see TiExpansion). */
  expansions?: TiExpansion[];
  tis?: TiWrite[];
  runs?: RunWrite[];
  xcoms?: XcomWrite[];
  /** Sets last_heartbeat_at for running TIs at these tries. */
  heartbeats?: { at: number; keys: Array<TiKey & { mapIndex: number; tryNumber: number }> };
  /** Callbacks owed, each inserted only if its ti/run write applied (an id already there is kept). */
  callbacks?: CallbackWrite[];
  /** Ids of callbacks that have run: deleted. */
  callbacksDone?: string[];
}

export interface WriteBatchResult {
  /** Per `expansions` entry: did it apply. Absent when the batch had none. */
  expansions?: boolean[];
  /** Per `tis` entry: did the compare-and-set apply (of `ifPoolFull` for a write in `poolFull`). */
  tis: boolean[];
  /** Per `runs` entry. */
  runs: boolean[];
  /** Indexes into `tis` of the writes whose pool had no room: their `ifPoolFull` row was written. */
  poolFull?: number[];
  /** Free slots, once the batch applied, of each pool named by an `ifPoolFull` write. */
  poolRoom?: Record<string, number>;
}

export interface ImportErrorRow {
  file: string;
  error: string;
  at: number;
}

export interface PoolRow {
  name: string;
  slots: number;
  description: string | null;
}

export interface SchedulerRow {
  id: string;
  hostname: string;
  pid: number;
  startedAt: number;
  lastHeartbeatAt: number;
}

/** A finished run the retention clean selected (or deleted). */
export interface ExpiredRun {
  dagId: string;
  runId: string;
  endedAt: number;
}

/** One batch of the retention clean: the runs, oldest first, and how many rows went with them. */
export interface ExpiredRunBatch {
  /** In (endedAt, dagId, runId) order. */
  runs: ExpiredRun[];
  taskInstances: number;
  xcoms: number;
}

/** What findExpiredRuns reads: also the counts of each run. */
export interface ExpiredRunPage extends ExpiredRunBatch {
  runs: Array<ExpiredRun & { taskInstances: number; xcoms: number }>;
}

export interface Store {
  readonly dialect: Dialect;
  /** Creates or upgrades the schema; idempotent and safe to call from several processes. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // DAGs and parsing
  /** Inserts or updates the dag row; also records the serialized version if it is new. */
  upsertDag(dag: { dagId: string; file: string; version: string; serialized: SerializedDag; nextRunAt?: number | null }): Promise<void>;
  getDag(dagId: string): Promise<DagRow | undefined>;
  listDags(): Promise<DagRow[]>;
  /** The serialized DAG of an older version (runs keep the version they started with). */
  getDagVersion(dagId: string, version: string): Promise<SerializedDag | undefined>;
  /** Every stored version of the DAG, newest first, with how many runs use each. */
  listDagVersions(dagId: string): Promise<DagVersionRow[]>;
  setDagPaused(dagId: string, paused: boolean): Promise<boolean>;
  /** Advances the schedule cursor only if it still is at `expect` (two schedulers, one run). */
  advanceNextRunAt(dagId: string, expect: number | null, next: number | null): Promise<boolean>;
  /** Removes DAG rows whose file is gone (their runs stay). */
  deleteDagsNotIn(files: string[]): Promise<number>;
  setImportError(file: string, error: string, at: number): Promise<void>;
  clearImportError(file: string): Promise<void>;
  listImportErrors(): Promise<ImportErrorRow[]>;

  // Runs
  /** Inserts the run and all its task instances in one transaction; false if the run id exists. */
  createRun(run: RunRow, tis: TiRow[]): Promise<boolean>;
  getRun(dagId: string, runId: string): Promise<RunRow | undefined>;
  /** The data interval of the latest successful run of the DAG whose logical date is before `beforeLogicalDate`. */
  prevSuccessfulInterval(dagId: string, beforeLogicalDate: number): Promise<DataInterval | undefined>;
  listRuns(filter?: { dagId?: string; states?: readonly RunState[]; limit?: number }): Promise<RunRow[]>;
  /** Runs of the DAG in state queued or running. */
  countActiveRuns(dagId: string): Promise<number>;
  /** Every run of the DAG whose logical date is in [from, to] (dag_run_logical_date_idx). */
  listRunsByLogicalDate(dagId: string, from: number, to: number): Promise<RunRow[]>;

  // Backfills
  createBackfill(row: BackfillRow): Promise<void>;
  getBackfill(id: string): Promise<BackfillRow | undefined>;
  /** Running backfills the schedulers drive: no driver, or one without a heartbeat since `deadBefore`. */
  listSchedulerBackfills(deadBefore: number): Promise<BackfillRow[]>;
  /** Moves the cursor (and sets state and driver) only if it still is at `expectCursor`. */
  advanceBackfill(id: string, expectCursor: number, next: { cursor: number; state: BackfillRow['state']; driver: string | null }): Promise<boolean>;
  /**
   * Moves a queued run that `schedulerId` holds to running (startedAt = `now`), only if fewer
   * than `maxActiveRuns` runs of its DAG are running. Exact with several schedulers:
   * PostgreSQL locks the DAG's row first (FOR UPDATE) and counts after, so schedulers starting
   * runs of one DAG take turns; SQLite has one writer. False if the run waits: the DAG is at
   * its limit or gone, or the run is no longer queued and held by `schedulerId`.
   */
  startRun(dagId: string, runId: string, schedulerId: string, maxActiveRuns: number, now: number): Promise<boolean>;

  // Task instances
  /** In (task id, map index) order. */
  getTaskInstances(dagId: string, runId: string): Promise<TiRow[]>;
  getTaskInstance(key: TiKey): Promise<TiRow | undefined>;
  /**
   * The instances of one task in a run (a mapped task's, or the one of a task that is not
   * mapped), in map-index order, only those in `page.states` when given (an empty list: none),
   * skipping `page.offset` (default 0) and at most `page.limit` (default: all of them). One
   * primary-key range (dag, run, task): never the run's other tasks. [] when there are none
   * (no such task, or no such run: tell them apart with getRun).
   */
  taskInstancesOf(dagId: string, runId: string, taskId: string, page?: TaskInstancePageQuery): Promise<TiRow[]>;
  /** How many instances one task has in a run, by state, in one grouped read of the same primary-key range. */
  taskStateCounts(dagId: string, runId: string, taskId: string): Promise<TaskStateCounts>;
  /** Applies every write of the batch in one transaction, through prepared statements. */
  write(batch: WriteBatch): Promise<WriteBatchResult>;
  /** Running TIs whose last heartbeat (or start, or queue time) is older than `before`. Selects only those rows. */
  findZombies(before: number, limit: number): Promise<TiRow[]>;
  /** Queued TIs queued before `before`. */
  findStaleQueued(before: number, limit: number): Promise<TiRow[]>;

  // XCom
  getXcom(key: TiKey): Promise<unknown>;
  /** Every XCom of one task in one run (of each of its mapped instances), in map-index order. */
  getTaskXcoms(dagId: string, runId: string, taskId: string): Promise<Array<{ mapIndex: number; value: unknown }>>;

  // Pools
  setPool(pool: PoolRow): Promise<void>;
  /** False if there was no such pool; throws a KilnError (code STORE) for 'default_pool'. */
  deletePool(name: string): Promise<boolean>;
  listPools(): Promise<PoolRow[]>;

  // Maintenance
  /**
   * Keeps the hot tables' dead rows in check when the database does not: on PostgreSQL with
   * autovacuum off, every state change leaves a dead row (state is indexed, so no update is
   * HOT) and the hot queries slow down as they pile up. Vacuums task_instance and dag_run
   * (SKIP_LOCKED: another scheduler's vacuum is not waited for) once dead rows pass a share
   * of live ones; returns the tables vacuumed. A no-op on SQLite and where autovacuum runs.
   */
  vacuumIfNeeded(): Promise<string[]>;

  // Schedulers (HA and takeover)
  heartbeatScheduler(row: SchedulerRow): Promise<void>;
  /**
   * Claims up to `limit` queued or running runs that no live scheduler holds (unclaimed, or
   * claimed by a scheduler whose heartbeat is older than `deadBefore`, or by `schedulerId`
   * itself after a restart). PostgreSQL uses FOR UPDATE SKIP LOCKED so several schedulers
   * never claim the same run.
   * Returns every active run `schedulerId` holds afterwards, oldest queued first: the ones it
   * already held (not counted against `limit`, not rewritten) plus the newly claimed ones.
   */
  claimRuns(schedulerId: string, deadBefore: number, limit: number): Promise<RunRow[]>;
  /** Releases claims (runs and owed callbacks) of a scheduler that is shutting down cleanly. */
  releaseRuns(schedulerId: string): Promise<void>;
  /**
   * Claims up to `limit` owed callbacks that no live owner holds (the same rule as claimRuns),
   * and returns every callback `owner` holds afterwards, oldest first.
   */
  claimCallbacks(owner: string, deadBefore: number, limit: number): Promise<CallbackRow[]>;
  /** The owed callbacks of one run (for `kiln runs show` and tests). */
  listCallbacks(dagId: string, runId: string): Promise<CallbackRow[]>;
  /** How many callbacks are owed, by anyone (a scheduler with --exit-when-idle waits for them). */
  countCallbacks(): Promise<number>;

  // Retention. Only finished runs (success, failed) with an end time before `endedBefore`
  // qualify: a queued or running run is never selected, nor one cleared back to queued. Runs
  // are picked through the dag_run (ended_at) index, oldest first, never by scanning task
  // instances.
  /**
   * Read-only, what deleteExpiredRuns would delete: up to `limit` such runs after the keyset
   * cursor `after` (exclusive), with the number of their task instances and XComs.
   */
  findExpiredRuns(endedBefore: number, limit: number, after?: ExpiredRun): Promise<ExpiredRunPage>;
  /**
   * Deletes up to `limit` such runs, oldest first, with their task instances and XComs, in one
   * short transaction; returns what it deleted. Safe to run from several processes at once:
   * on PostgreSQL a run another cleaner (or an operator's clear or mark) is holding is skipped,
   * never waited for, and left for a later batch.
   */
  deleteExpiredRuns(endedBefore: number, limit: number): Promise<ExpiredRunBatch>;

  // Metrics
  /**
   * What the Prometheus endpoint reads at scrape time, in one statement: the unfinished task
   * instances (scheduled, queued, running, up_for_retry, up_for_reschedule) by DAG, state and pool, the queued
   * and running runs by DAG, the pools and the number of import errors. The task instances
   * are read through the state index, never by scanning the table.
   */
  metricsSnapshot(): Promise<MetricsSnapshot>;

  // The change feed (migrations/0005) and the web UI's reads
  /**
   * Up to `limit` events with an id above `afterId`, in id order. Ids grow in commit order
   * (PostgreSQL appenders serialize on an advisory lock for their last statement), so a
   * reader that remembers the last id it saw misses nothing and sees nothing twice.
   */
  readEvents(afterId: number, limit: number): Promise<ChangeEvent[]>;
  /** The oldest and newest event ids kept, or null when the feed is empty. */
  eventIdRange(): Promise<{ first: number; last: number } | null>;
  /**
   * Deletes up to `limit` of the oldest events appended before `before` (epoch ms), never the
   * newest one (so ids keep growing from it); returns how many went.
   */
  trimEvents(before: number, limit: number): Promise<number>;
  /**
   * One page of a DAG's grid: up to `limit` runs, newest logical date first, strictly
   * before the keyset cursor `before` (exclusive), read through dag_run_logical_date_idx,
   * and their task instances through the task-instance primary key (see GridPageRead): the
   * unmapped ones (map index -1) as rows, a mapped task's instances counted by state in the
   * database, so a 10,000-instance map comes back as a few rows per run, not 10,000.
   */
  gridRuns(dagId: string, limit: number, before?: RunCursor): Promise<GridPageRead>;
  /** Every scheduler that ever beat (the web server's health reads their heartbeat ages). */
  listSchedulers(): Promise<SchedulerRow[]>;
  /**
   * One task instance (map index `mapIndex`, default -1) across the DAG's latest `limit` runs, newest logical date first (the
   * UI's peak-RSS sparkline): dag_run_logical_date_idx read backwards, then one primary-key
   * lookup per run.
   */
  taskHistory(dagId: string, taskId: string, limit: number, mapIndex?: number): Promise<Array<TiRow & { logicalDate: number }>>;
  /**
   * Calls `onAppend` soon after any process commits events, where the database can say so
   * (PostgreSQL: LISTEN/NOTIFY on one extra connection); resolves with a stop function, or
   * null where it cannot (SQLite: readers poll the feed by id). `onLost` is called once if
   * the listening connection breaks (readers fall back to polling).
   */
  watchEvents(onAppend: () => void, onLost?: (err: Error) => void): Promise<(() => Promise<void>) | null>;
}

/** What a state change appends to the change feed. */
export interface ChangeEventRow {
  kind: 'ti' | 'run';
  dagId: string;
  runId: string;
  /** kind 'ti' only. */
  taskId: string | null;
  /** kind 'ti' only: the instance's map index (-1 unmapped); migrations/0008. */
  mapIndex: number | null;
  /** A TiState for kind 'ti', a RunState for kind 'run'. */
  state: string;
  /** kind 'ti' only: the try number the task instance is at after the change. */
  tryNumber: number | null;
}

/** One row of the change feed. */
export interface ChangeEvent extends ChangeEventRow {
  id: number;
  /** When it was appended (epoch ms). */
  at: number;
}

/** A task instance as the grid shows it: only the columns a cell needs (10,000 of them in one page). */
export type GridTi = Pick<TiRow, 'runId' | 'taskId' | 'mapIndex' | 'state' | 'tryNumber'>;

/**
 * A mapped task's instances (map index >= 0) in one run that are in one state, counted by the
 * database: what a grid cell sums up, without the instances themselves.
 */
export interface GridMappedCount {
  runId: string;
  taskId: string;
  state: TiState;
  /** How many of the task's instances in the run are in `state` (>= 1). */
  count: number;
  /** The highest try number among them. */
  maxTryNumber: number;
}

/**
 * What Store.gridRuns reads for one page. Every task instance of the page's runs is in
 * exactly one of `tis` and `mapped`: `tis` holds those with map index -1 (a task that is not
 * mapped, or a mapped task not yet expanded: its placeholder), one row each, and `mapped` the
 * counts of the others, one per (run, task, state). `tis` is read first: an expansion that
 * commits between the two reads (PostgreSQL reads each statement at its own snapshot) leaves
 * the task's placeholder in `tis` beside its counts in `mapped`, never neither; the grid
 * ignores such a placeholder.
 *
 * Ordered by (run id, task id) and, in `mapped`, then state, each by the byte order of the
 * ids (SQLite's BINARY collation, PostgreSQL's "C"), so the two lists merge in one pass.
 */
export interface GridPageRead {
  runs: RunRow[];
  /** The instances with map index -1. */
  tis: GridTi[];
  mapped: GridMappedCount[];
}

/** Which of a task's instances Store.taskInstancesOf reads. */
export interface TaskInstancePageQuery {
  /** Skip this many (in map-index order, after the state filter); default 0. */
  offset?: number;
  /** At most this many; default all. */
  limit?: number;
  /** Only instances in these states; default every state. */
  states?: readonly TiState[];
}

/** How many instances one task has in a run (Store.taskStateCounts). */
export interface TaskStateCounts {
  /** Instances per state; states with none are left out. */
  states: Partial<Record<TiState, number>>;
  /** All of them, the sum of `states`: 0 when the run has no such task (or there is no such run). */
  count: number;
  /** True when any has a map index >= 0: the task is mapped and expanded. */
  mapped: boolean;
}

/** A position in a DAG's runs, newest first: (logical date, run id). */
export interface RunCursor {
  logicalDate: number;
  runId: string;
}

/** See Store.metricsSnapshot. */
export interface MetricsSnapshot {
  taskInstances: Array<{ dagId: string; state: TiState; pool: string; count: number; poolSlots: number }>;
  runs: Array<{ dagId: string; state: RunState; count: number }>;
  pools: Array<{ name: string; slots: number }>;
  importErrors: number;
}
