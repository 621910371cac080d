/**
 * The bullmq executor's options, checked once (a TypeError names the bad one): the
 * standard ExecutorOptions plus `extra.redisUrl`, `extra.zombieTimeoutMs` and
 * `extra.dagsFolder`, which the app fills from the configuration.
 */
import { resolve } from 'node:path';
import type { ExecutorOptions } from '../executor/types.js';

export interface BullmqSettings {
  parallelism: number;
  taskApi: ExecutorOptions['taskApi'];
  onEvent: ExecutorOptions['onEvent'];
  /** Room appeared without a try ending (worker hosts' slots freed or added): the engine dispatches again. */
  onCapacity?: () => void;
  logDir: string;
  redisUrl: string;
  /** A worker host silent this long loses its tries. */
  zombieTimeoutMs: number;
  /** Paths of DAG files inside it travel relative to it (a host maps them onto its own). */
  dagsFolder: string | null;
  log: (message: string) => void;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export function bullmqSettings(options: ExecutorOptions): BullmqSettings {
  const extra = options.extra ?? {};
  if (!(Number.isInteger(options.parallelism) && options.parallelism >= 1)) throw new TypeError(`executor option 'parallelism' must be an integer >= 1, got ${String(options.parallelism)}`);
  if (typeof options.taskApi?.xcom !== 'function') throw new TypeError("executor option 'taskApi' must be an object with an xcom(dagId, runId, taskId) function");
  if (typeof options.onEvent !== 'function') throw new TypeError("executor option 'onEvent' must be a function");
  if (typeof options.logDir !== 'string' || options.logDir.length === 0) throw new TypeError("executor option 'logDir' must be a folder path");
  const redisUrl = extra.redisUrl ?? process.env.KILN_REDIS_URL ?? DEFAULT_REDIS_URL;
  if (typeof redisUrl !== 'string' || !/^rediss?:\/\//.test(redisUrl)) throw new TypeError(`executor option 'extra.redisUrl' must be a redis:// URL, got ${JSON.stringify(redisUrl)}`);
  const zombieTimeoutMs = extra.zombieTimeoutMs ?? 60_000;
  if (typeof zombieTimeoutMs !== 'number' || !(zombieTimeoutMs > 0)) throw new TypeError(`executor option 'extra.zombieTimeoutMs' must be a number of milliseconds > 0, got ${JSON.stringify(zombieTimeoutMs)}`);
  const dagsFolder = extra.dagsFolder ?? null;
  if (dagsFolder !== null && typeof dagsFolder !== 'string') throw new TypeError(`executor option 'extra.dagsFolder' must be a folder path, got ${JSON.stringify(dagsFolder)}`);
  return {
    parallelism: options.parallelism,
    taskApi: options.taskApi,
    onEvent: options.onEvent,
    ...(options.onCapacity ? { onCapacity: options.onCapacity } : {}),
    logDir: resolve(options.logDir),
    redisUrl,
    zombieTimeoutMs,
    dagsFolder: dagsFolder === null ? null : resolve(dagsFolder),
    log: (message) => process.stderr.write(`kiln bullmq executor: ${message}\n`),
  };
}
