/**
 * The Executor plugin interface. Built-in executors are registered exactly as a
 * third-party one is: a module whose default export is an ExecutorFactory.
 *
 * The scheduler owns the database; an executor never touches it. Everything an executor
 * needs from the scheduler side (XCom values) comes through `taskApi`, and everything it
 * learns (started, heartbeats, finished) goes out through `onEvent`.
 */
import type { Isolation } from '../dag/types.js';
import type { LogLevel, ResourceUsage, SerializedError, TaskOutcome, TaskWork } from '../protocol/messages.js';

export type { TaskWork } from '../protocol/messages.js';

/** Answers runners' requests; built once per scheduler or per `dags test` run. */
export interface TaskApi {
  /** The XCom (return value) of `taskId` in the given run; undefined when it has none. */
  xcom(dagId: string, runId: string, taskId: string): Promise<unknown>;
}

export type ExecutorEvent =
  | { type: 'started'; key: string; isolation: Isolation; pid: number | null; threadId: number | null; at: number }
  /** Batched: every task the supervisor still sees alive, once per heartbeat interval. */
  | { type: 'heartbeat'; keys: string[]; at: number }
  /** A task called ctx.heartbeat(). */
  | { type: 'task-heartbeat'; key: string; details?: unknown; at: number }
  | {
      type: 'finished';
      key: string;
      outcome: TaskOutcome;
      /** ctx.fail(), or a fault that must not be retried. */
      noRetry: boolean;
      value?: unknown;
      /** outcome 'reschedule': when the sensor is poked again. */
      rescheduleAt?: number;
      error: SerializedError | null;
      exitCode: number | null;
      signal: string | null;
      usage: ResourceUsage;
      durationMs: number;
      at: number;
    };

/**
 * Why a pre-warmed worker was replaced: it ran maxTasksPerWorker tries (`max_tasks`), passed
 * maxWorkerMemoryBytes (`memory`), its runner asked (`requested`: too many DAG versions
 * loaded, or an error outside any task), it was killed by the supervisor (`killed`: timeout,
 * cancel, memory limit) or it died on its own (`crashed`).
 */
export type WorkerRecycleReason = 'max_tasks' | 'memory' | 'requested' | 'killed' | 'crashed';

export interface ExecutorOptions {
  /** How many tasks may run at once across all isolations. */
  parallelism: number;
  /**
   * Optional: how many workers start() pre-warms (default: parallelism). A run that can use
   * fewer (`dags test` of a narrow DAG) should not pay for starting the rest; more start on
   * demand, up to parallelism. An executor may ignore it.
   */
  warmWorkers?: number;
  /** Isolation for tasks that name none. */
  defaultIsolation: Isolation;
  taskApi: TaskApi;
  onEvent: (event: ExecutorEvent) => void;
  /**
   * Optional: every ctx.log line as it is written (a live view); the per-try log file gets
   * them either way. Added after the first version of this interface; an executor may
   * ignore it.
   */
  onLog?: (key: string, level: LogLevel, line: string) => void;
  /** Folder for per-try log files; the executor creates it. */
  logDir: string;
  /** How often the supervisor reports liveness of running tasks. */
  heartbeatIntervalMs?: number;
  /** Recycle a worker after this many tasks. */
  maxTasksPerWorker?: number;
  /** Recycle a worker whose memory passes this many bytes (heap for threads, RSS for processes). */
  maxWorkerMemoryBytes?: number;
  /**
   * Hard memory limit of a try while it runs (a task's own `maxTaskMemoryBytes` overrides
   * it): a process tree past it is killed, a thread is bounded by its heap limit and by the
   * growth of the executor's own RSS. Added in the second version of this interface.
   */
  maxTaskMemoryBytes?: number;
  /** Time between the AbortSignal and a forced kill at timeout or cancel. */
  killGraceMs?: number;
  /** Extra options for a third-party executor, passed through untouched. */
  extra?: Record<string, unknown>;
  /**
   * Optional (metrics): a pooled worker was replaced, and why. Added in the third version of
   * this interface; an executor may ignore it.
   */
  onWorkerRecycled?: (isolation: Isolation, reason: WorkerRecycleReason) => void;
  /**
   * Optional: freeSlots() rose without a try ending (the engine re-reads it only when a try
   * ends or at a tick, and `dags test` has no tick), e.g. remote worker hosts came up or
   * freed room. The engine dispatches again. Added in the fifth version of this interface;
   * an executor that frees slots only when its own tries end never calls it.
   */
  onCapacity?: () => void;
}

export interface Executor {
  readonly name: string;
  /** Pre-warms workers; resolves when the executor can accept work. */
  start(): Promise<void>;
  /** Hands over one try. Throws when freeSlots() is 0: callers respect backpressure. */
  submit(work: TaskWork): void;
  freeSlots(): number;
  /** Stops a running try: AbortSignal first, then after the grace period a kill. */
  cancel(key: string, reason: string): void;
  /** Stops taking work, lets running tasks finish for up to drainMs, then kills the rest. */
  stop(options?: { drainMs?: number }): Promise<void>;
  /** Optional (metrics): the live workers of each pool, and how many of them are idle. */
  workerCounts?(): Array<{ isolation: Isolation; workers: number; idle: number }>;
  /**
   * Optional: tries run elsewhere and may outlive the scheduler that submitted them (remote
   * worker hosts). Then cancel(key) also stops a try this executor never submitted (one a
   * dead scheduler left behind) and still emits exactly one 'finished' for it, so a scheduler
   * that adopts a run waits for the old try to end before it starts the next one. Added in
   * the fourth version of this interface.
   */
  readonly cancelsForeignTries?: boolean;
  /**
   * Optional, with cancelsForeignTries: takes over a try that a scheduler which is gone
   * handed to an executor of this kind, instead of cancelling it: its events (or its end,
   * read back from where it ran) follow as for a try submitted here, and it takes a slot
   * until it ends. `started`: the database has the try running (a try that is gone then was
   * lost; one only queued is handed out again). Exactly one 'finished' follows, as after
   * submit(). Added in the fifth version of this interface.
   */
  adoptTry?(work: TaskWork, state: { started: boolean }): void;
  /**
   * Optional: a run of this DAG module is about to start: warm workers import it now (and
   * workers started later, once they are up), so its first task does not wait for the
   * import. A module that fails to import fails nothing here: its first task reports it.
   */
  preload?(module: DagModule): void;
}

/** A DAG module as runners import it: the file, its version, and the pinned source of that version. */
export interface DagModule {
  dagFile: string;
  dagVersion: string;
  dagSourceFile: string | null;
}

export type ExecutorFactory = (options: ExecutorOptions) => Executor;
