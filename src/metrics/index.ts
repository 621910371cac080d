/**
 * kiln's Prometheus metrics: one registry per scheduler (or web server), fed by the run
 * engine's and the executor's events and by the scheduler loop, never by runners. The app
 * layer wires the sources (app/scheduler.ts); this module knows no store, scheduler or
 * runtime, only the executor's and the DAG model's types.
 *
 * Event-fed metrics cost a few number operations per event (see families.ts); gauges that
 * come from the database are read at scrape time (see database.ts).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Isolation } from '../dag/types.js';
import type { Executor, ExecutorEvent, TaskWork, WorkerRecycleReason } from '../executor/types.js';
import { createFamilies, type Families } from './catalog.js';
import { DatabaseGauges, DEFAULT_DATABASE_CACHE_MS, type DatabaseSnapshot } from './database.js';
import { GaugeFamily } from './families.js';
import type { KilnObserver, RunChange, TaskInstanceChange } from './observer.js';
import { TryMetrics } from './tries.js';

export type { DatabaseSnapshot } from './database.js';
export { TRY_EXIT_REASONS, type TryExitReason } from './exit-reason.js';
export { observeExecutor, type KilnObserver, type RunChange, type TaskInstanceChange } from './observer.js';

export interface KilnMetricsOptions {
  /** Add task_id to the per-try histograms (config metricsTaskLabels). */
  taskLabels?: boolean;
  /** Node's default process metrics (process_cpu_seconds_total, nodejs_heap_size_used_bytes...); default true. */
  processMetrics?: boolean;
}

const FINAL_TI_STATES = new Set(['success', 'failed', 'skipped', 'upstream_failed', 'removed']);

export class KilnMetrics implements KilnObserver {
  readonly registry = new Registry();
  private readonly tries: TryMetrics;
  private readonly f: Families;
  private lastHeartbeatAt: number | null = null;
  private executor: Executor | null = null;

  constructor(options: KilnMetricsOptions = {}) {
    const taskLabels = options.taskLabels ?? false;
    this.f = createFamilies(this.registry, taskLabels);
    this.tries = new TryMetrics(this.f, taskLabels);
    new GaugeFamily({ name: 'kiln_executor_slots', help: 'Executor slots: open (free for a try), running (tries handed over and not finished).', labelNames: ['state'] }, this.registry, () => {
      if (this.executor === null) return [];
      return [{ labels: ['open'], value: this.executor.freeSlots() }, { labels: ['running'], value: this.tries.running }];
    });
    new GaugeFamily({ name: 'kiln_worker_pool_workers', help: 'Live pre-warmed workers per pool (thread, process): busy (running a try or starting) and idle.', labelNames: ['isolation', 'state'] }, this.registry, () =>
      (this.executor?.workerCounts?.() ?? []).flatMap((p) => [{ labels: [p.isolation, 'busy'], value: p.workers - p.idle }, { labels: [p.isolation, 'idle'], value: p.idle }]),
    );
    new GaugeFamily({ name: 'kiln_scheduler_last_heartbeat_timestamp_seconds', help: 'When this scheduler last recorded its heartbeat in the database (Unix time).' }, this.registry, () =>
      this.lastHeartbeatAt === null ? [] : [{ labels: [], value: this.lastHeartbeatAt / 1000 }],
    );
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters (promtool's lint rejects them); the same figures remain, by type, without the suffix.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
  }

  // ---- sources ---------------------------------------------------------------------

  executorCreated(executor: Executor): void {
    this.executor = executor;
  }

  trySubmitted(work: TaskWork): void {
    this.tries.submitted(work);
  }

  tryRefused(key: string): void {
    this.tries.refused(key);
  }

  executorEvent(event: ExecutorEvent): void {
    this.tries.onEvent(event);
  }

  /** A zombie try was ended by the scheduler: no heartbeat reached the database (reason `heartbeat`, as its callbacks say). */
  tryLost(ti: TaskInstanceChange): void {
    this.f.tryExits.cell(ti.dagId, 'heartbeat', '').inc();
  }

  /** A pooled worker was replaced (ExecutorOptions onWorkerRecycled). */
  workerRecycled(isolation: Isolation, reason: WorkerRecycleReason): void {
    this.f.workerRecycles.cell(isolation, reason).inc();
  }

  /** Scrape-time gauges from the database: `read` is Store.metricsSnapshot, cached `cacheMs`. */
  attachDatabase(read: () => Promise<DatabaseSnapshot>, cacheMs = DEFAULT_DATABASE_CACHE_MS): void {
    new DatabaseGauges(this.registry, read, cacheMs);
  }

  /** The engine committed a change to a task instance (RunEngine onTaskChange). */
  taskInstanceChanged(ti: TaskInstanceChange): void {
    if (FINAL_TI_STATES.has(ti.state)) this.f.tiFinishes.cell(ti.dagId, ti.state).inc();
    else if (ti.state === 'up_for_retry') this.f.tiRetries.cell(ti.dagId).inc();
  }

  /** A run ended (RunEngine onRunFinished). */
  runFinished(run: RunChange): void {
    if (run.startedAt === null || run.endedAt === null) return;
    this.f.runDuration.cell(run.dagId, run.state).observe(Math.max(0, run.endedAt - run.startedAt) / 1000);
  }

  /** The scheduler started a queued run: a scheduled one may have started late. */
  runStarted(run: RunChange): void {
    if (run.runType !== 'scheduled' || run.startedAt === null) return;
    this.f.scheduleDelay.cell(run.dagId).observe(Math.max(0, run.startedAt - run.dataIntervalEnd) / 1000);
  }

  schedulerTick(durationMs: number): void {
    this.f.loopDuration.cell().observe(durationMs / 1000);
  }

  schedulerHeartbeat(at: number): void {
    this.lastHeartbeatAt = at;
    this.f.heartbeats.cell().inc();
  }

  dagFolderParsed(durationMs: number): void {
    this.f.parseDuration.cell().observe(durationMs / 1000);
  }

  storeWrite(durationMs: number): void {
    this.f.storeWrite.cell().observe(durationMs / 1000);
  }

  // ---- exposition ------------------------------------------------------------------

  /** The Prometheus text exposition of every metric. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
