/** The DAG model shared by authoring, the scheduler, the store and the runners. Pure types. */

export const TRIGGER_RULES = [
  'all_success',
  'all_failed',
  'all_done',
  'all_done_min_one_success',
  'one_success',
  'one_failed',
  'one_done',
  'none_failed',
  'none_failed_min_one_success',
  'none_skipped',
  'all_skipped',
  'always',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

export const ISOLATIONS = ['thread', 'process', 'spawn'] as const;
export type Isolation = (typeof ISOLATIONS)[number];

/** Airflow's task-instance state machine. */
export const TI_STATES = [
  'none',
  'scheduled',
  'queued',
  'running',
  'success',
  'failed',
  'up_for_retry',
  'skipped',
  'upstream_failed',
] as const;
export type TiState = (typeof TI_STATES)[number];
export const FINISHED_TI_STATES: readonly TiState[] = ['success', 'failed', 'skipped', 'upstream_failed'];

export type RunState = 'queued' | 'running' | 'success' | 'failed';

/** Milliseconds, or a string such as '500ms', '30s', '5m', '2h', '1d'. */
export type Duration = number | string;

export interface TaskOptions {
  upstream?: Array<TaskHandle | string>;
  triggerRule?: TriggerRule;
  retries?: number;
  retryDelay?: Duration;
  retryExponentialBackoff?: boolean;
  maxRetryDelay?: Duration;
  /** Hard limit per try. */
  timeout?: Duration;
  /** The task promises to call ctx.heartbeat() at least this often. */
  heartbeatTimeout?: Duration;
  isolation?: Isolation;
  pool?: string;
  poolSlots?: number;
  priorityWeight?: number;
  /** Environment variables a spawned/forked task may see from kiln's own environment. */
  env?: string[];
  /** Hard memory limit of one try (bytes, or a size like '512MiB'); default: the config's. */
  maxTaskMemoryBytes?: number | string;
  /**
   * Called in the worker with the error of a failed try (the real Error, or whatever was
   * thrown); returning false ends the task failed without using its retries.
   */
  retryOn?: (error: unknown) => boolean;
  /** Names of error classes (the error's class or any class it extends) never retried. */
  noRetryOn?: string[];
}

export type TaskDefaults = Omit<TaskOptions, 'upstream'>;

export interface DagOptions {
  id: string;
  /** cron expression, '@hourly'-style preset, or null (manual only). */
  schedule?: string | null;
  startDate?: string | Date;
  catchup?: boolean;
  maxActiveRuns?: number;
  maxActiveTasks?: number;
  params?: Record<string, unknown>;
  /** JSON Schema (draft 2020-12) every run's params must satisfy; its defaults fill missing params. */
  paramsSchema?: Record<string, unknown>;
  defaults?: TaskDefaults;
  tags?: string[];
  description?: string;
}

export interface TaskLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

export interface TaskContext {
  readonly dagId: string;
  readonly runId: string;
  readonly taskId: string;
  readonly tryNumber: number;
  readonly maxTries: number;
  readonly params: Readonly<Record<string, unknown>>;
  /** How the run came to be. */
  readonly runType: 'manual' | 'scheduled' | 'backfill';
  /** The run's logical date: the start of its data interval for scheduled runs. */
  readonly logicalDate: Date;
  /** The slice of time the run covers, [start, end). */
  readonly dataIntervalStart: Date;
  readonly dataIntervalEnd: Date;
  /** The data interval of the DAG's latest successful run before this one; null when there is none. */
  readonly prevDataIntervalStartSuccess: Date | null;
  readonly prevDataIntervalEndSuccess: Date | null;
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /** The return value of another task of this run (usually an upstream). */
  xcom<T = unknown>(taskId: string): Promise<T>;
  heartbeat(details?: unknown): void;
  /** Ends this try as skipped. */
  skip(reason?: string): never;
  /** Fails this task with no retry. */
  fail(reason?: string): never;
}

export type TaskFn = (ctx: TaskContext) => unknown;

export interface TaskHandle {
  readonly taskId: string;
}

/** Task options after defaults are applied and durations parsed: what the scheduler reads. */
export interface ResolvedTaskOptions {
  upstream: string[];
  triggerRule: TriggerRule;
  retries: number;
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number | null;
  timeoutMs: number | null;
  heartbeatTimeoutMs: number | null;
  isolation: Isolation | null; // null: use the executor/config default
  pool: string;
  poolSlots: number;
  priorityWeight: number;
  env: string[];
  /** null: the executor's default (config maxTaskMemoryBytes). */
  maxTaskMemoryBytes: number | null;
  noRetryOn: string[];
}

/** Task options that are functions: they live in the DAG module only, never serialized. */
export interface TaskHooks {
  retryOn: ((error: unknown) => boolean) | null;
}

export interface TaskDefinition extends ResolvedTaskOptions, TaskHooks {
  taskId: string;
  fn: TaskFn;
}

/** What `dag()` returns and a DAG file default-exports. */
export interface Dag {
  readonly __kilnDag: 1;
  readonly dagId: string;
  readonly options: Readonly<DagOptions>;
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
}

/** JSON form of a DAG (no functions): stored in the database and sent to the scheduler. */
export interface SerializedDag {
  dagId: string;
  schedule: string | null;
  startDate: string | null;
  catchup: boolean;
  maxActiveRuns: number;
  maxActiveTasks: number;
  params: Record<string, unknown>;
  /** Absent in DAG versions serialized before the option existed. */
  paramsSchema?: Record<string, unknown> | null;
  tags: string[];
  description: string | null;
  tasks: Array<{ taskId: string } & ResolvedTaskOptions>;
}
