/**
 * Wiring of the scheduler's metrics and traces: which sources feed them (the store's write
 * transactions, the DAG folder passes, the scheduler loop, the engine and the executor; see
 * context.ts for the last two) and where `/metrics` is served. prom-client and OpenTelemetry
 * are imported only when they are turned on: a scheduler without them loads neither.
 */
import type { KilnConfig } from '../config/load.js';
import type { Isolation } from '../dag/types.js';
import type { ExecutorEvent, WorkerRecycleReason } from '../executor/types.js';
import type { KilnObserver } from '../metrics/observer.js';
import type { RunEngineOptions } from '../scheduler/run-engine.js';
import { DEFAULT_METRICS_PORT } from '../config/load.js';
import { UsageError, errorMessage } from '../errors.js';
import type { MetricsServer } from '../metrics/http.js';
import type { KilnMetrics } from '../metrics/index.js';
import type { LocalObserver } from '../remote/worker-host.js';
import type { DagSource, SchedulerOptions } from '../scheduler/scheduler.js';
import type { Store } from '../store/types.js';

export interface MetricsAddress {
  host: string;
  port: number;
}

/**
 * Where `/metrics` is served: `--metrics` (true: the configured or default address; or
 * `port`, `host:port`, `[v6]:port`, `host`), else metricsPort from the config; null: nowhere.
 */
export function metricsAddress(config: Pick<KilnConfig, 'metricsHost' | 'metricsPort'>, flag?: string | boolean): MetricsAddress | null {
  if (flag === undefined || flag === false) return config.metricsPort === null ? null : { host: config.metricsHost, port: config.metricsPort };
  const fallbackPort = config.metricsPort ?? DEFAULT_METRICS_PORT;
  if (flag === true || flag === '') return { host: config.metricsHost, port: fallbackPort };
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(flag.trim());
  const bare = /^\d+$/.test(flag.trim());
  if (bare) return { host: config.metricsHost, port: port(flag.trim(), flag) };
  if (m === null) throw new UsageError(`--metrics must be [host:]port, got '${flag}'`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? config.metricsHost : host, port: m[3] === undefined ? fallbackPort : port(m[3], flag) };
}

function port(raw: string, flag: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--metrics: '${flag}' has no valid port (0-65535)`);
  return n;
}

/**
 * The registry of one scheduler, with the store's writes timed and its scrape-time gauges
 * attached. prom-client is loaded here, only when metrics are on.
 */
export async function schedulerMetrics(config: Pick<KilnConfig, 'metricsTaskLabels'>, store: Store): Promise<KilnMetrics> {
  const { KilnMetrics } = await import('../metrics/index.js');
  const metrics = new KilnMetrics({ taskLabels: config.metricsTaskLabels });
  metrics.attachDatabase(() => store.metricsSnapshot());
  const write = store.write.bind(store);
  // Own property over the prototype's method: the engine's write transactions are timed, nothing else changes.
  store.write = async (batch) => {
    const start = performance.now();
    try {
      return await write(batch);
    } finally {
      metrics.storeWrite(performance.now() - start);
    }
  };
  return metrics;
}

/**
 * The registry of one worker host (`kiln worker --metrics`): the tries it runs (starts, exits
 * by reason, durations by outcome, peak RSS, CPU), its pools (sizes, recycles) and Node's
 * process metrics, with the scheduler's names and labels. Task-instance finishes, runs, pools
 * and the scheduler's own figures stay with the scheduler, which commits them.
 */
export async function workerMetrics(config: Pick<KilnConfig, 'metricsTaskLabels'>): Promise<{ metrics: KilnMetrics; observe: LocalObserver }> {
  const { KilnMetrics, observeExecutor } = await import('../metrics/index.js');
  const metrics = new KilnMetrics({ taskLabels: config.metricsTaskLabels });
  return {
    metrics,
    observe: {
      executor: (executor) => observeExecutor(executor, [metrics]),
      event: (event) => metrics.executorEvent(event),
      workerRecycled: (isolation, reason) => metrics.workerRecycled(isolation, reason),
    },
  };
}

/** The scheduler loop's observers: metrics (loop, heartbeats) and every observer's runStarted. */
export function schedulerObservers(metrics: KilnMetrics | undefined, observers: readonly KilnObserver[]): Pick<SchedulerOptions, 'onTick' | 'onHeartbeat' | 'onRunStarted' | 'onZombie'> {
  const started = observers.filter((o) => o.runStarted !== undefined);
  const lost = observers.filter((o) => o.tryLost !== undefined);
  return {
    ...(metrics ? { onTick: (ms: number) => metrics.schedulerTick(ms), onHeartbeat: (at: number) => metrics.schedulerHeartbeat(at) } : {}),
    ...(started.length > 0 ? { onRunStarted: (run) => started.forEach((o) => o.runStarted!(run)) } : {}),
    ...(lost.length > 0 ? { onZombie: (ti) => lost.forEach((o) => o.tryLost!(ti)) } : {}),
  };
}

/** One function per executor-side hook that some observer has, or none (the hot path stays bare without observers). */
export function observerEvents(observers: readonly KilnObserver[]): {
  executorEvent?: (event: ExecutorEvent) => void;
  workerRecycled?: (isolation: Isolation, reason: WorkerRecycleReason) => void;
} {
  const events = observers.filter((o) => o.executorEvent !== undefined);
  const recycles = observers.filter((o) => o.workerRecycled !== undefined);
  return {
    ...(events.length === 1 ? { executorEvent: (e: ExecutorEvent) => events[0]!.executorEvent!(e) } : {}),
    ...(events.length > 1 ? { executorEvent: (e: ExecutorEvent) => events.forEach((o) => o.executorEvent!(e)) } : {}),
    ...(recycles.length > 0 ? { workerRecycled: (i: Isolation, r: WorkerRecycleReason) => recycles.forEach((o) => o.workerRecycled!(i, r)) } : {}),
  };
}

type EngineCallbacks = Pick<RunEngineOptions, 'onTaskChange' | 'onRunFinished'>;

/** The engine callbacks, each also reported to the observers (after the commit, as the engine calls them). */
export function observedEngineCallbacks<C extends EngineCallbacks>(observers: readonly KilnObserver[], callbacks: C): C {
  const changed = observers.filter((o) => o.taskInstanceChanged !== undefined);
  const finished = observers.filter((o) => o.runFinished !== undefined);
  const { onTaskChange, onRunFinished } = callbacks;
  return {
    ...callbacks,
    onTaskChange: (run, ti) => {
      for (const o of changed) o.taskInstanceChanged!(ti);
      onTaskChange?.(run, ti);
    },
    onRunFinished: (run) => {
      for (const o of finished) o.runFinished!(run.run);
      onRunFinished?.(run);
    },
  };
}

/** The DAG folder, each pass timed. */
export function timedDagSource(source: DagSource, metrics: KilnMetrics): DagSource {
  return {
    async refresh() {
      const start = performance.now();
      try {
        await source.refresh();
      } finally {
        metrics.dagFolderParsed(performance.now() - start);
      }
    },
  };
}

/** Traces to `endpoint`: OpenTelemetry's SDK is loaded here, only when traces are on. */
export async function openTracer(endpoint: string): Promise<KilnObserver & { close(): Promise<void> }> {
  const { RunTracer } = await import('../metrics/traces.js');
  return new RunTracer({ endpoint });
}

export async function serveMetrics(metrics: KilnMetrics, address: MetricsAddress): Promise<MetricsServer> {
  const { startMetricsServer } = await import('../metrics/http.js');
  try {
    return await startMetricsServer(metrics, address.host, address.port);
  } catch (err) {
    throw new UsageError(`cannot serve metrics on ${address.host}:${address.port}: ${errorMessage(err)}`);
  }
}
