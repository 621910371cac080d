/**
 * The supervisor <-> runner protocol. One set of messages for every transport: a
 * MessagePort (thread), the IPC channel of a pre-forked child (process) or of a spawned
 * one (spawn). Every kiln message carries the marker `__kiln: 1` so that messages of the
 * pool libraries and of user code pass through untouched.
 */
import type { CallbackKind, FailureReason, Isolation } from '../dag/types.js';

/** Set on the work of a callback (see scheduler/callbacks.ts): what happened, for its context. */
export interface CallbackSpec {
  kind: CallbackKind;
  /** 'dag': the DAG's onSuccess/onFailure (taskId is ''), 'task': the task's. */
  scope: 'task' | 'dag';
  state: string;
  reason: FailureReason | null;
  error: string | null;
  exitCode: number | null;
  signal: string | null;
}

/** Everything a runner needs to run one try of one task. Plain JSON. */
export interface TaskWork {
  /** Unique per try: `${dagId}/${runId}/${taskId}/${tryNumber}` (`${taskId}[${mapIndex}]` for a mapped instance). */
  key: string;
  dagId: string;
  runId: string;
  taskId: string;
  /** A mapped instance's index; absent or -1 for a task that is not mapped. */
  mapIndex?: number;
  /** A mapped instance's element of what its task maps over (ctx.item). */
  item?: unknown;
  tryNumber: number;
  maxTries: number;
  /** Absolute path of the DAG file. */
  dagFile: string;
  /** Content hash of the DAG file; the runner's module cache is keyed by file + version. */
  dagVersion: string;
  /**
   * The DAG file's source as it was at `dagVersion` (a snapshot kept when it was parsed):
   * the runner imports this, so a run finishes on the code it started with. Optional, and
   * null when there is no snapshot: then the file as it is now.
   */
  dagSourceFile?: string | null;
  params: Record<string, unknown>;
  /** The run's time, epoch ms (see RunRow): the task context turns them into Dates. */
  runType: 'manual' | 'scheduled' | 'backfill';
  logicalDate: number;
  dataIntervalStart: number;
  dataIntervalEnd: number;
  /** The data interval of the DAG's latest successful run before this one, or null. */
  prevDataIntervalStartSuccess: number | null;
  prevDataIntervalEndSuccess: number | null;
  isolation: Isolation;
  timeoutMs: number | null;
  heartbeatTimeoutMs: number | null;
  /** Names of environment variables the task may see (process and spawn). */
  env: string[];
  /** Per-try log file (stdout, stderr and ctx.log), or null to not capture. */
  logFile: string | null;
  /**
   * Hard memory limit of this try in bytes, or null for the executor's default. Optional:
   * work built for an older executor has none.
   */
  maxTaskMemoryBytes?: number | null;
  /** A sensor's first poke (epoch ms): its timeout counts from there; null before the first. */
  sensorFirstPokeAt?: number | null;
  /** Present when this work runs a callback instead of the task function. */
  callback?: CallbackSpec | null;
  /** The task's priorityWeight (higher runs first); optional: work built before it existed has none. */
  priorityWeight?: number;
  /**
   * The task's `queue` option: which worker hosts may run it (the bullmq executor; others
   * ignore it). Optional: absent means 'default'.
   */
  queue?: string;
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export interface ResourceUsage {
  peakRssBytes: number | null;
  cpuMs: number | null;
}

/** 'reschedule': a reschedule sensor's poke found nothing; it is poked again at `rescheduleAt`. */
export type TaskOutcome = 'success' | 'failed' | 'skipped' | 'reschedule';

/** What a runner reports when a task function returns, throws, skips or fails. */
export interface TaskResult {
  outcome: TaskOutcome;
  /** The return value (success only), already checked to be JSON-serializable. */
  value?: unknown;
  error?: SerializedError;
  /** ctx.fail(): fail without retry. */
  noRetry?: boolean;
  /** outcome 'reschedule': when to poke again (epoch ms). */
  rescheduleAt?: number;
  /** Figures the runner can measure itself (heap, CPU of its thread). */
  usage?: ResourceUsage;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

// Runner -> supervisor
export type RunnerMessage =
  | { __kiln: 1; type: 'started'; key: string; pid: number; threadId: number }
  | { __kiln: 1; type: 'heartbeat'; key: string; details?: unknown }
  | { __kiln: 1; type: 'log'; key: string; level: LogLevel; line: string }
  | { __kiln: 1; type: 'xcom-pull'; key: string; requestId: number; taskId: string }
  | { __kiln: 1; type: 'finished'; key: string; result: TaskResult };

// Supervisor -> runner
export type SupervisorMessage =
  | { __kiln: 1; type: 'run'; work: TaskWork }
  | { __kiln: 1; type: 'xcom-value'; requestId: number; value?: unknown; error?: SerializedError }
  | { __kiln: 1; type: 'cancel'; key: string; reason: string }
  /** Import this DAG module now, ahead of its first task (Executor.preload). */
  | { __kiln: 1; type: 'preload'; dagFile: string; dagVersion: string; dagSourceFile: string | null };

export function isKilnMessage(value: unknown): value is RunnerMessage | SupervisorMessage {
  return typeof value === 'object' && value !== null && (value as { __kiln?: unknown }).__kiln === 1;
}

export function taskKey(dagId: string, runId: string, taskId: string, tryNumber: number, mapIndex = -1): string {
  return mapIndex < 0 ? `${dagId}/${runId}/${taskId}/${tryNumber}` : `${dagId}/${runId}/${taskId}[${mapIndex}]/${tryNumber}`;
}
