/**
 * The JSON shapes of kiln's HTTP API (`/api/v1`), shared by the server and the browser app
 * (ui/ imports this file's types only). Times are epoch milliseconds, as in the CLI's JSON.
 *
 * Task instances are objects keyed by their ids (never positional tuples), so a field such
 * as `mapIndex` can be added without breaking a reader.
 *
 * A task instance is (task, map index): a task that is not mapped has one, map index -1; a
 * mapped task (d.map) has one per map index 0..N-1 once expanded (before that, one
 * placeholder at -1). Routes that address one task instance take `?mapIndex=N` (absent: -1;
 * a mapped task's then answers 400 naming its map indexes, except its XCom: the collected list).
 */
import type { Isolation, RunState, TiState } from '../dag/types.js';

export type { Isolation, RunState, TiState };

/** Every error: a stable `code` (kiln's KilnError codes, plus NOT_FOUND, FORBIDDEN, UNSUPPORTED_MEDIA_TYPE, INTERNAL) and a message. */
export interface ApiError {
  /** `violations`: params a DAG's paramsSchema refused, one `params.<path>: <why>` each (code USAGE). */
  error: { code: string; message: string; violations?: string[] };
}

export interface ApiRun {
  dagId: string;
  runId: string;
  runType: 'manual' | 'scheduled' | 'backfill';
  state: RunState;
  logicalDate: number;
  dataIntervalStart: number;
  dataIntervalEnd: number;
  params: Record<string, unknown>;
  dagVersion: string;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  /** The scheduler driving the run, or null. */
  claimedBy: string | null;
}

export interface ApiDagSummary {
  dagId: string;
  file: string;
  schedule: string | null;
  description: string | null;
  tags: string[];
  paused: boolean;
  tasks: number;
  /** The next scheduled run: its logical date and when it is due; null for a manual-only DAG. */
  nextRun: { logicalDate: number; dueAt: number } | null;
  /** The latest runs, newest first (by the time they were queued). */
  lastRuns: Array<Pick<ApiRun, 'runId' | 'state' | 'logicalDate' | 'runType'>>;
}

export interface ApiImportError {
  file: string;
  error: string;
  at: number;
}

export interface ApiDagList {
  dags: ApiDagSummary[];
  importErrors: ApiImportError[];
}

export interface ApiTask {
  taskId: string;
  upstream: string[];
  triggerRule: string;
  retries: number;
  isolation: Isolation | null;
  pool: string;
  poolSlots: number;
  priorityWeight: number;
  timeoutMs: number | null;
  /** A mapped task (d.map): one instance per item of what it maps over. */
  mapped: boolean;
}

export interface ApiDag extends Omit<ApiDagSummary, 'tasks' | 'lastRuns'> {
  version: string;
  maxActiveRuns: number;
  maxActiveTasks: number;
  params: Record<string, unknown>;
  /** The JSON Schema every run's params must satisfy (null: any object). */
  paramsSchema: Record<string, unknown> | null;
  tasks: ApiTask[];
  edges: Array<{ from: string; to: string }>;
}

/** One cell of the grid: a task instance of a run. */
export interface ApiGridCell {
  /** Index into `runs`. */
  run: number;
  /** Index into `tasks`. */
  task: number;
  state: TiState;
  tryNumber: number;
}

/**
 * A mapped task's instances in one run, as one cell (never one cell per instance): how many
 * there are and how many are in each state. `state` stands for them all (the first of
 * failed, upstream_failed, up_for_retry, up_for_reschedule, queued, scheduled, running, none,
 * success, skipped, removed that any instance is in, as Airflow's grid orders them), and
 * `tryNumber` is the highest try number among them, so a reader that knows only ApiGridCell
 * still draws it. Its instances: GET .../runs/:runId/tasks/:taskId/instances.
 */
export interface ApiGridMappedCell extends ApiGridCell {
  mapped: true;
  /** Instances, removed ones included. */
  count: number;
  /** Instances per state; states with none are left out. */
  states: Partial<Record<TiState, number>>;
}

/** Runs x tasks of one DAG in one response, newest run first; `nextCursor` pages to older runs. */
export interface ApiGrid {
  dagId: string;
  tasks: string[];
  runs: Array<Pick<ApiRun, 'runId' | 'state' | 'runType' | 'logicalDate' | 'startedAt' | 'endedAt'>>;
  /** One per (run, task) that has instances: ApiGridMappedCell for a mapped task's (`mapped: true`). */
  cells: Array<ApiGridCell | ApiGridMappedCell>;
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/**
 * One try. kiln stores the latest try of a task instance in full; earlier tries keep only
 * their log files, so they come with `recorded: false` and null details (nothing invented).
 */
export interface ApiTry {
  tryNumber: number;
  recorded: boolean;
  state: TiState | null;
  isolation: Isolation | null;
  pid: number | null;
  queuedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  /** Why it failed (code, message), or null. */
  error: string | null;
  peakRssBytes: number | null;
  cpuMs: number | null;
  lastHeartbeatAt: number | null;
}

export interface ApiTaskInstance {
  dagId: string;
  runId: string;
  taskId: string;
  /** -1 for a task that is not mapped; 0..N-1 for a mapped task's instances. */
  mapIndex: number;
  state: TiState;
  tryNumber: number;
  maxTries: number;
  pool: string;
  poolSlots: number;
  priorityWeight: number;
  nextRetryAt: number | null;
  /** Oldest first; the last one is the current try. Empty before the first try. */
  tries: ApiTry[];
}

/** One task instance (one map index: `?mapIndex=`, default -1) across the DAG's latest runs, newest first: what its sparklines draw. */
export interface ApiTaskHistory {
  dagId: string;
  taskId: string;
  mapIndex: number;
  instances: Array<{
    runId: string;
    logicalDate: number;
    state: TiState;
    tryNumber: number;
    durationMs: number | null;
    peakRssBytes: number | null;
    cpuMs: number | null;
    exitCode: number | null;
    signal: string | null;
  }>;
}

export interface ApiRunDetail {
  run: ApiRun;
  /** Every task instance of the run (each of a mapped task's), in (task, map index) order. */
  taskInstances: ApiTaskInstance[];
}

/** One instance of a mapped task as its task's instance list shows it. */
export interface ApiInstanceSummary {
  mapIndex: number;
  state: TiState;
  tryNumber: number;
  maxTries: number;
  startedAt: number | null;
  endedAt: number | null;
  durationMs: number | null;
  /** Why it failed, first line only (the instance itself has it whole). */
  error: string | null;
}

/** A page of one task's instances in a run, in map-index order (`?offset=&limit=&state=`), with the counts of all of them. */
export interface ApiTaskInstancePage {
  dagId: string;
  runId: string;
  taskId: string;
  /** True once the task has instances with map indexes (mapped and expanded). */
  mapped: boolean;
  /** All instances of the task in this run. */
  count: number;
  states: Partial<Record<TiState, number>>;
  /** Instances matching `state` (all without it). */
  total: number;
  offset: number;
  instances: ApiInstanceSummary[];
}

/**
 * Which instances of a task are in which state, as map-index lists (compact: a 10,000-instance
 * map is about 50 KB), with the change feed's position read just before them: every event up
 * to `feedPosition` is in these states; apply the events after it (by their `mapIndex`) to
 * keep them current. What the web UI's collapsed grid cell patches its counts from.
 */
export interface ApiInstanceStates {
  dagId: string;
  runId: string;
  taskId: string;
  mapped: boolean;
  count: number;
  feedPosition: number;
  mapIndexes: Partial<Record<TiState, number[]>>;
}

/** `GET .../tasks/:taskId/xcom`: with `?mapIndex=` that instance's value; without it the task's result as a downstream's ctx.xcom() gets it (a mapped task's: its successful instances' values in map-index order). */
export interface ApiXcom {
  taskId: string;
  /** The map index asked for, or null: the task as a whole. */
  mapIndex: number | null;
  /** null when there is none. */
  value: unknown;
}

export interface ApiLogChunk {
  tryNumber: number;
  /** The log file's size in bytes now. */
  size: number;
  /** Byte offset of `text` in the file; ask again from offset + length to follow it. */
  offset: number;
  length: number;
  text: string;
}

export interface ApiClearResult {
  dryRun: boolean;
  /** Task instances cleared (or that would be), by id: the task id, `task[3]` for a mapped instance. */
  cleared: string[];
  /** Queued or running: left alone. */
  skipped: Array<{ taskId: string; mapIndex: number; state: TiState }>;
  /** Changed by someone else meanwhile, not cleared (ids as in `cleared`). */
  conflicts: string[];
}

export interface ApiMarkResult {
  dryRun: boolean;
  changed: Array<{ taskId: string; mapIndex: number; from: string; to: 'success' | 'failed' }>;
  runState: RunState;
}

export interface ApiPool {
  name: string;
  slots: number;
  usedSlots: number;
  description: string | null;
}

export interface ApiHealth {
  status: 'ok';
  database: 'ok';
  /** The freshest scheduler heartbeat's age, or null if no scheduler ever ran on this database. */
  schedulerHeartbeatAgeMs: number | null;
  schedulers: Array<{ id: string; hostname: string; pid: number; startedAt: number; lastHeartbeatAt: number; heartbeatAgeMs: number }>;
}

/** `event: change` on /api/v1/events (the SSE id is `id`). */
export interface ApiChangeEvent {
  id: number;
  at: number;
  kind: 'ti' | 'run';
  dagId: string;
  runId: string;
  taskId: string | null;
  /** kind 'ti': the instance's map index (-1 unless mapped); null for kind 'run'. */
  mapIndex: number | null;
  state: string;
  tryNumber: number | null;
}
