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
  // A reschedule sensor's poke found nothing: no slot held, poked again at nextRetryAt.
  'up_for_reschedule',
  // A mapped instance whose index the latest expansion no longer has (its upstream now
  // returns fewer items): finished, counted as neither success nor failure.
  'removed',
] as const;
export type TiState = (typeof TI_STATES)[number];
export const FINISHED_TI_STATES: readonly TiState[] = ['success', 'failed', 'skipped', 'upstream_failed', 'removed'];

/** The map index of a task instance that is not mapped (and of a mapped task not yet expanded). */
export const UNMAPPED = -1;

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
  /**
   * Which worker hosts run the task with the `bullmq` executor: only `kiln worker`s that
   * consume this queue (default 'default'). Other executors ignore it.
   */
  queue?: string;
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
  /** Called (in a worker of the task's isolation) after the task succeeded. */
  onSuccess?: CallbackFn;
  /** Called once after the task failed for good (its last try, or a try that may not be retried). */
  onFailure?: CallbackFn;
  /** Called after each failed try that will be retried. */
  onRetry?: CallbackFn;
  /** Called after the task skipped itself (ctx.skip()); not when a trigger rule skipped it. */
  onSkipped?: CallbackFn;
  /** At most this many instances of this task run at once in one run (mapped tasks; rate-limited APIs). */
  maxActiveTisPerRun?: number;
  /** At most this many instances of this task run at once across the DAG's runs (counted per scheduler). */
  maxActiveTisPerDag?: number;
}

/**
 * What a mapped task maps over: an upstream's handle (its returned array, or the entries of a
 * returned object), a literal array, or an object of those (the cross product: `ctx.item` is
 * then an object with the same keys).
 */
export type MapOver = TaskHandle | readonly unknown[] | { readonly [key: string]: TaskHandle | readonly unknown[] };

export interface MapOptions extends TaskOptions {
  over: MapOver;
}

/** One source of a map as serialized: an upstream task's result, or a literal list. */
export type MapSourceSpec = { task: string } | { items: unknown[] };

/** How a mapped task expands, as the scheduler reads it. */
export interface MapSpec {
  /** One source (ctx.item is its element), or named sources (ctx.item is an object: the cross product). */
  over: MapSourceSpec | { product: Record<string, MapSourceSpec> };
}

export type TaskDefaults = Omit<TaskOptions, 'upstream'>;

export type TaskKind = 'task' | 'branch' | 'shortCircuit' | 'sensor';

/** A branch returns the task(s) to follow: ids or handles of direct downstream tasks, or null for none. */
export type BranchChoice = string | TaskHandle | null | undefined | Array<string | TaskHandle>;

export interface ShortCircuitOptions extends TaskOptions {
  /** true (default): a falsy result skips everything downstream; false: only the direct downstreams (later trigger rules still apply). */
  ignoreDownstreamTriggerRules?: boolean;
}

export interface SensorOptions extends TaskOptions {
  /** How long between pokes (default 60s). */
  pokeInterval?: Duration;
  /** How long the sensor may wait, counted from its first poke across reschedules, retries and restarts (default 7 days). */
  timeout?: Duration;
  /** 'poke' (default): the try holds its slot and pokes in a loop; 'reschedule': each poke is a short try that gives the slot back. */
  mode?: 'poke' | 'reschedule';
  /** When the timeout runs out: skipped instead of failed. */
  softFail?: boolean;
  /** Double the wait after each empty poke (up to maxWait). */
  exponentialBackoff?: boolean;
  maxWait?: Duration;
}

/** A sensor's settings as the runner and the scheduler read them. */
export interface SensorSpec {
  pokeIntervalMs: number;
  timeoutMs: number;
  mode: 'poke' | 'reschedule';
  softFail: boolean;
  exponentialBackoff: boolean;
  maxWaitMs: number | null;
}

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
  /** Called once when a run succeeds. */
  onSuccess?: CallbackFn;
  /** Called once when a run fails (reason `task_failed` or `timed_out`). */
  onFailure?: CallbackFn;
  /** A run still unfinished this long after it started is stopped and failed (reason `timed_out`). */
  dagrunTimeout?: Duration;
  /** The most instances one mapped task may expand to (default 10,000). */
  maxMapLength?: number;
}

/** The callback kinds: task callbacks have all four, DAG callbacks `success` and `failure`. */
export const CALLBACK_KINDS = ['success', 'failure', 'retry', 'skipped'] as const;
export type CallbackKind = (typeof CALLBACK_KINDS)[number];

/**
 * Why a try, a task or a run failed, as callbacks (and metrics) name it. A try: `exception`
 * (the task threw or called ctx.fail()), `exit_code` (its process exited), `signal` (killed by
 * a signal kiln did not send), `timeout`, `out_of_memory`, `heartbeat` (no heartbeat: a
 * zombie), `worker_lost` (the worker went away otherwise), `cancelled`. A run: `task_failed`
 * or `timed_out`.
 */
export type FailureReason =
  | 'exception' | 'exit_code' | 'signal' | 'timeout' | 'out_of_memory' | 'heartbeat' | 'worker_lost' | 'cancelled'
  | 'task_failed' | 'timed_out';

/** What a callback is called with. */
export interface CallbackContext {
  readonly kind: CallbackKind;
  readonly dagId: string;
  readonly runId: string;
  /** null for a DAG callback. */
  readonly taskId: string | null;
  /** The mapped instance's index; -1 for an unmapped task, null for a DAG callback. */
  readonly mapIndex: number | null;
  /** The try that ended (task callbacks), else null. */
  readonly tryNumber: number | null;
  readonly maxTries: number | null;
  /** The task instance's state after the try (success, failed, up_for_retry, skipped), or the run's. */
  readonly state: string;
  /** Why it failed (see FailureReason); null unless it failed. */
  readonly reason: FailureReason | null;
  /** The error message of the failed try, or the reason's sentence for a run. */
  readonly error: string | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly params: Readonly<Record<string, unknown>>;
  readonly runType: 'manual' | 'scheduled' | 'backfill';
  readonly logicalDate: Date;
  readonly dataIntervalStart: Date;
  readonly dataIntervalEnd: Date;
  /** Writes to the callback's own log file (`kiln tasks logs --callbacks`). */
  readonly log: TaskLogger;
  /** Aborted when the callback passes its time limit or kiln stops (`signal` is the try's kill signal). */
  readonly abortSignal: AbortSignal;
}

export type CallbackFn = (ctx: CallbackContext) => unknown;

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
  /** This instance's index in its mapped task (0, 1, ...); -1 for a task that is not mapped. */
  readonly mapIndex: number;
  /** A mapped instance's element of what the task maps over; undefined for a task that is not mapped. */
  readonly item: unknown;
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
  /** The return value of another task of this run (usually an upstream); of a mapped task, every instance's, in map-index order. */
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
  /**
   * The remote queue (bullmq executor), 'default' unless set. Optional only because DAG
   * versions serialized before it existed have none: read it as `queue ?? 'default'`.
   */
  queue?: string;
  env: string[];
  /** null: the executor's default (config maxTaskMemoryBytes). */
  maxTaskMemoryBytes: number | null;
  noRetryOn: string[];
  /** What the task is: a plain task, a branch, a short-circuit or a sensor (absent: a plain task). */
  kind?: TaskKind;
  /** shortCircuit only: a falsy result skips every task downstream (true) or only the direct ones (false). */
  ignoreDownstreamTriggerRules?: boolean;
  /** sensor only. */
  sensor?: SensorSpec;
  /** A mapped task (d.map): what it expands over. */
  map?: MapSpec;
  /** Absent: no limit. */
  maxActiveTisPerRun?: number | null;
  maxActiveTisPerDag?: number | null;
  /**
   * Which callbacks the task has (the functions stay in the DAG module). Absent in DAG
   * versions serialized before callbacks existed.
   */
  callbacks?: CallbackKind[];
}

/** Task options that are functions: they live in the DAG module only, never serialized. */
export interface TaskHooks {
  retryOn: ((error: unknown) => boolean) | null;
  onSuccess: CallbackFn | null;
  onFailure: CallbackFn | null;
  onRetry: CallbackFn | null;
  onSkipped: CallbackFn | null;
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
  /** The DAG's callbacks (success, failure); absent in versions serialized before they existed. */
  callbacks?: CallbackKind[];
  /** null: no run timeout; absent in versions serialized before the option existed. */
  dagrunTimeoutMs?: number | null;
  /** Absent in versions serialized before mapping existed: 10,000. */
  maxMapLength?: number;
}
