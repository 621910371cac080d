/**
 * The local executor's options: checked once, each bad one named in a TypeError, and filled
 * with defaults, so the supervisor only ever sees complete settings.
 */
import { ISOLATIONS, type Isolation } from '../dag/types.js';
import { DEFAULT_MAX_WORKER_MEMORY_BYTES, defaultTaskMemoryBytes, heapLimitMbFor, machineMemoryBytes } from './memory-limits.js';
import type { ExecutorOptions, TaskApi } from './types.js';

export interface LocalExecutorOptions extends ExecutorOptions {
  /**
   * V8 heap limit of each worker, in MB: resourceLimits.maxOldGenerationSizeMb for threads,
   * --max-old-space-size for processes (a spawned task's follows its own memory limit).
   * Default: derived from maxTaskMemoryBytes (never node's own: a thread that reaches the
   * process-wide limit aborts all of kiln).
   */
  workerHeapLimitMb?: number;
  /** A worker that has loaded more superseded DAG versions than this is recycled. Default 20. */
  maxDagVersionsPerWorker?: number;
  /** How often running task processes are sampled with pidusage. Default 1000. */
  usageSampleIntervalMs?: number;
  /** First delay before a worker is restarted in a crash loop; doubles per crash. Default 100. */
  respawnDelayMs?: number;
  /** Cap of that delay. Default 10000. */
  maxRespawnDelayMs?: number;
  /** A worker that is not ready within this is a failed start. Default 30000. */
  workerStartTimeoutMs?: number;
}

export interface LocalSettings {
  parallelism: number;
  /** Workers start() pre-warms: at most parallelism. */
  warmWorkers: number;
  defaultIsolation: Isolation;
  taskApi: TaskApi;
  onEvent: ExecutorOptions['onEvent'];
  onLog: ExecutorOptions['onLog'] | null;
  onWorkerRecycled: ExecutorOptions['onWorkerRecycled'] | null;
  logDir: string;
  heartbeatIntervalMs: number;
  maxTasksPerWorker: number | null;
  maxWorkerMemoryBytes: number | null;
  /** Default hard memory limit of a try (a task's own option overrides it). */
  maxTaskMemoryBytes: number;
  killGraceMs: number;
  workerHeapLimitMb: number;
  maxDagVersionsPerWorker: number;
  usageSampleIntervalMs: number;
  respawnDelayMs: number;
  maxRespawnDelayMs: number;
  workerStartTimeoutMs: number;
}

type LocalKey = 'workerHeapLimitMb' | 'maxDagVersionsPerWorker' | 'usageSampleIntervalMs' | 'respawnDelayMs' | 'maxRespawnDelayMs' | 'workerStartTimeoutMs';

/**
 * The local-only options may also come in `extra` (how a config file reaches them through
 * the generic ExecutorOptions); a top-level value wins.
 */
export function settingsFrom(options: LocalExecutorOptions): LocalSettings {
  if (options === null || typeof options !== 'object') throw new TypeError('createLocalExecutor(options): options must be an object');
  const extra = options.extra ?? {};
  const local = (key: LocalKey): unknown => options[key] ?? extra[key];

  const int = (name: string, value: unknown, min: number, fallback: number | null): number | null => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new TypeError(`executor option '${name}' must be an integer >= ${min}, got ${show(value)}`);
    }
    return value;
  };
  const req = (name: string, value: unknown, min: number, fallback: number): number => int(name, value, min, fallback)!;

  if (!Number.isInteger(options.parallelism) || options.parallelism < 1) {
    throw new TypeError(`executor option 'parallelism' must be an integer >= 1, got ${show(options.parallelism)}`);
  }
  if (!(ISOLATIONS as readonly unknown[]).includes(options.defaultIsolation)) {
    throw new TypeError(`executor option 'defaultIsolation' must be one of ${ISOLATIONS.join(', ')}, got ${show(options.defaultIsolation)}`);
  }
  if (typeof options.taskApi?.xcom !== 'function') throw new TypeError("executor option 'taskApi' must be an object with an xcom(dagId, runId, taskId) function");
  if (typeof options.onEvent !== 'function') throw new TypeError("executor option 'onEvent' must be a function");
  if (options.onLog !== undefined && typeof options.onLog !== 'function') throw new TypeError("executor option 'onLog' must be a function");
  if (options.onWorkerRecycled !== undefined && typeof options.onWorkerRecycled !== 'function') throw new TypeError("executor option 'onWorkerRecycled' must be a function");
  if (typeof options.logDir !== 'string' || options.logDir.length === 0) throw new TypeError(`executor option 'logDir' must be a folder path, got ${show(options.logDir)}`);

  const respawnDelayMs = req('respawnDelayMs', local('respawnDelayMs'), 0, 100);
  const maxWorkerMemoryBytes = int('maxWorkerMemoryBytes', options.maxWorkerMemoryBytes, 1, null);
  const maxTaskMemoryBytes = req('maxTaskMemoryBytes', options.maxTaskMemoryBytes, 1, defaultTaskMemoryBytes({
    totalMemoryBytes: machineMemoryBytes(),
    parallelism: options.parallelism,
    maxWorkerMemoryBytes: maxWorkerMemoryBytes ?? DEFAULT_MAX_WORKER_MEMORY_BYTES,
  }));
  return {
    parallelism: options.parallelism,
    warmWorkers: Math.min(options.parallelism, req('warmWorkers', options.warmWorkers, 1, options.parallelism)),
    defaultIsolation: options.defaultIsolation,
    taskApi: options.taskApi,
    onEvent: options.onEvent,
    onLog: options.onLog ?? null,
    onWorkerRecycled: options.onWorkerRecycled ?? null,
    logDir: options.logDir,
    heartbeatIntervalMs: req('heartbeatIntervalMs', options.heartbeatIntervalMs, 1, 5000),
    maxTasksPerWorker: int('maxTasksPerWorker', options.maxTasksPerWorker, 1, null),
    maxWorkerMemoryBytes,
    maxTaskMemoryBytes,
    killGraceMs: req('killGraceMs', options.killGraceMs, 0, 2000),
    workerHeapLimitMb: req('workerHeapLimitMb', local('workerHeapLimitMb'), 16, heapLimitMbFor(maxTaskMemoryBytes)),
    maxDagVersionsPerWorker: req('maxDagVersionsPerWorker', local('maxDagVersionsPerWorker'), 1, 20),
    usageSampleIntervalMs: req('usageSampleIntervalMs', local('usageSampleIntervalMs'), 10, 1000),
    respawnDelayMs,
    maxRespawnDelayMs: req('maxRespawnDelayMs', local('maxRespawnDelayMs'), respawnDelayMs, 10_000),
    workerStartTimeoutMs: req('workerStartTimeoutMs', local('workerStartTimeoutMs'), 1, 30_000),
  };
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
