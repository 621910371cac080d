/**
 * Wiring: builds the execution context (store, executor, run engine) once per `dags test`
 * run or per scheduler, never per task. app/ may import anything; only cli/, the public
 * index and bench/ import app/.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KilnConfig } from '../config/load.js';
import type { Isolation } from '../dag/types.js';
import { resolveExecutor } from '../executor/registry.js';
import type { Executor, ExecutorEvent } from '../executor/types.js';
import { RunEngine, type RunEngineOptions } from '../scheduler/run-engine.js';
import { dagSourcesFolder } from './dag-files.js';
import { createStore } from '../store/index.js';
import { observeExecutor, type KilnObserver } from '../metrics/observer.js';
import { observedEngineCallbacks, observerEvents } from './metrics.js';
import type { Store } from '../store/types.js';

export interface KilnContext {
  config: KilnConfig;
  store: Store;
  executor: Executor;
  engine: RunEngine;
  schedulerId: string;
  close(options?: { drainMs?: number }): Promise<void>;
}

export interface OpenContextOptions {
  /** Engine callbacks (progress, run finished, stale runs). */
  engine?: Pick<RunEngineOptions, 'onTaskChange' | 'onRunFinished' | 'onRunStale' | 'onError' | 'poolSlots' | 'poolsInStore' | 'outage' | 'onCallbackFailed'>;
  /** An already open store to reuse (the benchmark's per-task variant, tests). */
  store?: Store;
  /**
   * Keep this context's row in the scheduler table fresh (default true), so a `kiln
   * scheduler` on the same database sees the runs this context drives as held by a live
   * owner and never takes them over mid-flight. The scheduler service beats on its own.
   */
  heartbeat?: boolean;
  /** Metrics and traces: they see every try, task-instance and run change (see metrics/observer.ts). */
  observers?: KilnObserver[];
  /** How many workers to pre-warm (default: parallelism); see ExecutorOptions.warmWorkers. */
  warmWorkers?: number;
}

export async function openKilnContext(config: KilnConfig, options: OpenContextOptions = {}): Promise<KilnContext> {
  const store = options.store ?? (await createStore(config.databaseUrl));
  try {
    if (!options.store) await store.migrate();
    const { factory, defaultIsolation } = await resolveExecutor(config.executor);
    const isolation: Isolation = defaultIsolation ?? config.defaultIsolation;
    const schedulerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    // The executor and the engine refer to each other: events flow executor -> engine, XCom
    // pulls flow executor -> engine.taskApi. Bind through closures once both exist.
    const late: { engine?: RunEngine } = {};
    const observers = options.observers ?? [];
    const observed = observerEvents(observers);
    const rawExecutor = factory({
      parallelism: config.parallelism,
      ...(options.warmWorkers !== undefined ? { warmWorkers: options.warmWorkers } : {}),
      defaultIsolation: isolation,
      taskApi: { xcom: (dagId, runId, taskId) => late.engine!.taskApi.xcom(dagId, runId, taskId) },
      onEvent: observed.executorEvent
        ? (event: ExecutorEvent) => {
            observed.executorEvent!(event);
            late.engine?.onExecutorEvent(event);
          }
        : (event: ExecutorEvent) => late.engine?.onExecutorEvent(event),
      logDir: config.logsFolder,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      maxTasksPerWorker: config.maxTasksPerWorker,
      maxWorkerMemoryBytes: config.maxWorkerMemoryBytes,
      maxTaskMemoryBytes: config.maxTaskMemoryBytes,
      killGraceMs: config.killGraceMs,
      // redisUrl, zombieTimeoutMs, dagsFolder: for the bullmq executor (src/remote/); the local one ignores them.
      extra: { workerHeapLimitMb: config.workerHeapLimitMb, redisUrl: config.redisUrl, zombieTimeoutMs: config.zombieTimeoutMs, dagsFolder: config.dagsFolder },
      ...(observed.workerRecycled ? { onWorkerRecycled: observed.workerRecycled } : {}),
      onCapacity: () => late.engine?.poke(),
    });
    const executor = observers.length > 0 ? observeExecutor(rawExecutor, observers) : rawExecutor;
    const engineCallbacks = observers.length > 0 ? observedEngineCallbacks(observers, options.engine ?? {}) : options.engine;
    const engine = new RunEngine({ store, executor, schedulerId, logsFolder: config.logsFolder, sourcesFolder: dagSourcesFolder(config), defaultIsolation: isolation, ...engineCallbacks });
    late.engine = engine;
    await executor.start();
    const stopHeartbeat = options.heartbeat === false ? () => {} : await beatAsOwner(store, schedulerId, Math.min(config.heartbeatIntervalMs, 5_000));
    const ctx: KilnContext = {
      config,
      store,
      executor,
      engine,
      schedulerId,
      async close(closeOptions = {}) {
        engine.close();
        stopHeartbeat();
        try {
          await executor.stop({ drainMs: closeOptions.drainMs ?? 0 });
          await engine.whenIdle();
        } finally {
          if (!options.store) await store.close();
        }
      },
    };
    return ctx;
  } catch (err) {
    if (!options.store) await store.close().catch(() => {});
    throw err;
  }
}

/** Writes the owner's heartbeat now and then every `everyMs` until the returned stop is called. */
async function beatAsOwner(store: Store, id: string, everyMs: number): Promise<() => void> {
  const startedAt = Date.now();
  const beat = () => store.heartbeatScheduler({ id, hostname: hostname(), pid: process.pid, startedAt, lastHeartbeatAt: Date.now() });
  await beat();
  const timer = setInterval(() => void beat().catch(() => {}), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
