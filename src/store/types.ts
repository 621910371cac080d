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

export type RunType = 'manual' | 'scheduled';

export interface RunRow {
  dagId: string;
  runId: string;
  runType: RunType;
  /** For scheduled runs the start of the data interval; for manual runs the trigger time. */
  logicalDate: number;
  state: RunState;
  params: Record<string, unknown>;
  dagVersion: string;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  /** The scheduler currently driving this run (HA), or null. */
  claimedBy: string | null;
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

/** One transaction's worth of writes (one scheduler tick or one batch of executor events). */
export interface WriteBatch {
  tis?: TiWrite[];
  runs?: RunWrite[];
  xcoms?: XcomWrite[];
  /** Sets last_heartbeat_at for running TIs at these tries. */
  heartbeats?: { at: number; keys: Array<TiKey & { tryNumber: number }> };
}

export interface WriteBatchResult {
  /** Per `tis` entry: did the compare-and-set apply. */
  tis: boolean[];
  /** Per `runs` entry. */
  runs: boolean[];
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
  listRuns(filter?: { dagId?: string; states?: readonly RunState[]; limit?: number }): Promise<RunRow[]>;
  /** Runs of the DAG in state queued or running. */
  countActiveRuns(dagId: string): Promise<number>;

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
}
