/**
 * The metadata store: one interface, one implementation per SQL dialect (store/sqlite,
 * store/postgres). Hot-path statements are prepared once when the store opens. Times are
 * epoch milliseconds everywhere.
 *
 * Task-instance writes are compare-and-set on (task instance, try number, expected states):
 * a late event from a stale try, or from a scheduler that lost its claim, changes nothing.
 */
import type { Isolation, RunState, SerializedDag, TiState } from '../dag/types.js';

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
  /** up_for_retry: when the next try may start. */
  nextRetryAt: number | null;
}

export interface TiKey {
  dagId: string;
  runId: string;
  taskId: string;
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
  set: { state: RunState; startedAt?: number | null; endedAt?: number | null };
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
  tis?: TiWrite[];
  runs?: RunWrite[];
  xcoms?: XcomWrite[];
  /** Sets last_heartbeat_at for running TIs at these tries. */
  heartbeats?: { at: number; keys: Array<TiKey & { tryNumber: number }> };
}

export interface WriteBatchResult {
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
  /**
   * Moves a queued run that `schedulerId` holds to running (startedAt = `now`), only if fewer
   * than `maxActiveRuns` runs of its DAG are running. Exact with several schedulers:
   * PostgreSQL locks the DAG's row first (FOR UPDATE) and counts after, so schedulers starting
   * runs of one DAG take turns; SQLite has one writer. False if the run waits: the DAG is at
   * its limit or gone, or the run is no longer queued and held by `schedulerId`.
   */
  startRun(dagId: string, runId: string, schedulerId: string, maxActiveRuns: number, now: number): Promise<boolean>;

  // Task instances
  getTaskInstances(dagId: string, runId: string): Promise<TiRow[]>;
  getTaskInstance(key: TiKey): Promise<TiRow | undefined>;
  /** Applies every write of the batch in one transaction, through prepared statements. */
  write(batch: WriteBatch): Promise<WriteBatchResult>;
  /** Running TIs whose last heartbeat (or start, or queue time) is older than `before`. Selects only those rows. */
  findZombies(before: number, limit: number): Promise<TiRow[]>;
  /** Queued TIs queued before `before`. */
  findStaleQueued(before: number, limit: number): Promise<TiRow[]>;

  // XCom
  getXcom(key: TiKey): Promise<unknown>;

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
  /** Releases claims of a scheduler that is shutting down cleanly. */
  releaseRuns(schedulerId: string): Promise<void>;

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
}
