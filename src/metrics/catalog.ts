/**
 * Every metric kiln exports, in one place: names, labels, buckets. The names are part of
 * kiln's contract (README, "Observability"): one `kiln_` prefix, base units, `_total` on
 * counters. Labels are bounded: dag_id, task_id (histograms only, with metricsTaskLabels),
 * state, pool, isolation, and the exit reason and signal; never a run id.
 */
import type { Registry } from 'prom-client';
import { CounterFamily, HistogramFamily } from './families.js';

const MiB = 1024 * 1024;

export const BUCKETS = {
  /** Warm tries take well under a millisecond; batch jobs take hours. */
  tryDurationSeconds: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400],
  queuedSeconds: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300],
  peakRssBytes: [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384].map((m) => m * MiB),
  runDurationSeconds: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
  scheduleDelaySeconds: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
  loopSeconds: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  storeSeconds: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  parseSeconds: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
} as const;

/** The event-fed families (the scrape-time gauges live with their sources). */
export function createFamilies(registry: Registry, taskLabels: boolean) {
  const task = (labels: string[]): string[] => (taskLabels ? [...labels, 'task_id'] : labels);
  return {
    tiStarts: new CounterFamily({
      name: 'kiln_task_instance_starts_total',
      help: 'Tries that started running (one per try, retries included).',
      labelNames: ['dag_id'],
    }, registry),
    tiFinishes: new CounterFamily({
      name: 'kiln_task_instance_finishes_total',
      help: 'Task instances that reached a final state (success, failed, skipped, upstream_failed), as committed to the database.',
      labelNames: ['dag_id', 'state'],
    }, registry),
    tiRetries: new CounterFamily({
      name: 'kiln_task_instance_retries_total',
      help: 'Failed tries that left the task instance up_for_retry.',
      labelNames: ['dag_id'],
    }, registry),
    tryExits: new CounterFamily({
      name: 'kiln_task_try_exits_total',
      help: 'Tries that ended failed, by reason (exception, exit_code, signal, timeout, out_of_memory, heartbeat, worker_lost, cancelled); signal is the signal name or empty.',
      labelNames: ['dag_id', 'reason', 'signal'],
    }, registry),
    tryCpu: new CounterFamily({
      name: 'kiln_task_try_cpu_seconds_total',
      help: 'CPU time used by tries (user + system), as measured by the supervisor.',
      labelNames: ['dag_id', 'isolation'],
    }, registry),
    tryDuration: new HistogramFamily({
      name: 'kiln_task_try_duration_seconds',
      help: 'Wall time of a try from its start on a worker to its end, by outcome (success, failed, skipped).',
      labelNames: task(['dag_id', 'isolation', 'state']),
      buckets: BUCKETS.tryDurationSeconds,
    }, registry),
    queuedDuration: new HistogramFamily({
      name: 'kiln_task_queued_duration_seconds',
      help: 'Time a try spent queued: from its hand-over to the executor until a worker started it.',
      labelNames: task(['dag_id', 'isolation']),
      buckets: BUCKETS.queuedSeconds,
    }, registry),
    tryPeakRss: new HistogramFamily({
      name: 'kiln_task_try_peak_rss_bytes',
      help: 'Peak memory of a try: RSS of its process tree (process, spawn) or its isolate heap (thread).',
      labelNames: task(['dag_id', 'isolation']),
      buckets: BUCKETS.peakRssBytes,
    }, registry),
    runDuration: new HistogramFamily({
      name: 'kiln_dag_run_duration_seconds',
      help: 'Wall time of a DAG run from its start to its end, by final state.',
      labelNames: ['dag_id', 'state'],
      buckets: BUCKETS.runDurationSeconds,
    }, registry),
    scheduleDelay: new HistogramFamily({
      name: 'kiln_dag_run_schedule_delay_seconds',
      help: 'For scheduled runs: how long after the end of its data interval (when it was due) the run started.',
      labelNames: ['dag_id'],
      buckets: BUCKETS.scheduleDelaySeconds,
    }, registry),
    loopDuration: new HistogramFamily({
      name: 'kiln_scheduler_loop_duration_seconds',
      help: 'Duration of one scheduler loop tick (schedules, claims, liveness, pools).',
      buckets: BUCKETS.loopSeconds,
    }, registry),
    heartbeats: new CounterFamily({
      name: 'kiln_scheduler_heartbeats_total',
      help: "Scheduler heartbeats recorded in the database.",
    }, registry),
    parseDuration: new HistogramFamily({
      name: 'kiln_dag_parse_duration_seconds',
      help: 'Duration of one pass over the DAG folder (listing, and parsing the files that changed).',
      buckets: BUCKETS.parseSeconds,
    }, registry),
    workerRecycles: new CounterFamily({
      name: 'kiln_worker_recycles_total',
      help: 'Pre-warmed workers replaced, by reason: max_tasks, memory, requested (by the runner), killed (by the supervisor), crashed.',
      labelNames: ['isolation', 'reason'],
    }, registry),
    storeWrite: new HistogramFamily({
      name: 'kiln_store_transaction_duration_seconds',
      help: 'Duration of one write transaction of the scheduler (a batch of task-instance and run changes).',
      buckets: BUCKETS.storeSeconds,
    }, registry),
  };
}

export type Families = ReturnType<typeof createFamilies>;
