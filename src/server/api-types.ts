/**
 * The JSON shapes of kiln's HTTP API (`/api/v1`), shared by the server and the browser app
 * (ui/ imports this file's types only). Times are epoch milliseconds, as in the CLI's JSON.
 *
 * Task instances are objects keyed by their ids (never positional tuples), so a field such
 * as `mapIndex` can be added without breaking a reader.
 */
import type { Isolation, RunState, TiState } from '../dag/types.js';

export type { Isolation, RunState, TiState };

/** Every error: a stable `code` (kiln's KilnError codes, plus NOT_FOUND, FORBIDDEN, UNSUPPORTED_MEDIA_TYPE, INTERNAL) and a message. */
export interface ApiError {
  error: { code: string; message: string };
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

/** Runs x tasks of one DAG in one response, newest run first; `nextCursor` pages to older runs. */
export interface ApiGrid {
  dagId: string;
  tasks: string[];
  runs: Array<Pick<ApiRun, 'runId' | 'state' | 'runType' | 'logicalDate' | 'startedAt' | 'endedAt'>>;
  cells: ApiGridCell[];
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

/** One task across the DAG's latest runs, newest first: what its sparklines draw. */
export interface ApiTaskHistory {
  dagId: string;
  taskId: string;
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
  taskInstances: ApiTaskInstance[];
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
  /** Task ids cleared (or that would be). */
  cleared: string[];
  /** Queued or running: left alone. */
  skipped: Array<{ taskId: string; state: TiState }>;
  /** Changed by someone else meanwhile, not cleared. */
  conflicts: string[];
}

export interface ApiMarkResult {
  dryRun: boolean;
  changed: Array<{ taskId: string; from: string; to: 'success' | 'failed' }>;
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
  state: string;
  tryNumber: number | null;
}
