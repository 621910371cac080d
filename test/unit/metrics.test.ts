/**
 * The metrics collectors, fed by hand-made executor and engine events: exact counter values,
 * label sets (task_id on histograms only with taskLabels, never a run id), histogram buckets,
 * the scrape-time database gauges and their cache, the /metrics handler and the address
 * parsing of `--metrics`. The exposition is checked with promtool where it is installed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricsAddress } from '../../src/app/metrics.js';
import { loadConfig } from '../../src/config/load.js';
import type { Executor, ExecutorEvent, TaskWork } from '../../src/executor/types.js';
import { DatabaseGauges, derive } from '../../src/metrics/database.js';
import { tryExitReason } from '../../src/metrics/exit-reason.js';
import { startMetricsServer } from '../../src/metrics/http.js';
import { KilnMetrics, observeExecutor, type DatabaseSnapshot } from '../../src/metrics/index.js';
import { REPO } from '../helpers/cli.js';
import { binaryOrNotice, parseExposition, promtoolCheck, sampleValue, type Sample } from '../helpers/prometheus.js';

type Finished = Extract<ExecutorEvent, { type: 'finished' }>;

function work(dagId: string, runId: string, taskId: string, tryNumber = 1, isolation: TaskWork['isolation'] = 'process'): TaskWork {
  return {
    key: `${dagId}/${runId}/${taskId}/${tryNumber}`, dagId, runId, taskId, tryNumber, maxTries: 1, dagFile: '/dags/x.ts', dagVersion: 'v1',
    params: {}, runType: 'manual', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, prevDataIntervalStartSuccess: null,
    prevDataIntervalEndSuccess: null, isolation, timeoutMs: null, heartbeatTimeoutMs: null, env: [], logFile: null,
  };
}

function finished(key: string, over: Partial<Finished> = {}): Finished {
  return {
    type: 'finished', key, outcome: 'success', noRetry: false, error: null, exitCode: null, signal: null,
    usage: { peakRssBytes: 50 * 1024 * 1024, cpuMs: 20 }, durationMs: 30, at: Date.now(), ...over,
  };
}

/** An executor that accepts everything and does nothing: the test plays its events. */
function fakeExecutor(freeSlots = 4): Executor & { submitted: TaskWork[] } {
  const submitted: TaskWork[] = [];
  return {
    name: 'fake', submitted,
    start: async () => {},
    submit: (w) => void submitted.push(w),
    freeSlots: () => freeSlots,
    cancel: () => {},
    stop: async () => {},
  };
}

async function samples(metrics: KilnMetrics): Promise<Sample[]> {
  return parseExposition((await metrics.scrape()).body);
}

/** Runs one try through the wrapped executor and the event feed. */
function playTry(metrics: KilnMetrics, executor: Executor, w: TaskWork, end: Partial<Finished> = {}): void {
  executor.submit(w);
  metrics.executorEvent({ type: 'started', key: w.key, isolation: w.isolation, pid: 1, threadId: null, at: Date.now() });
  metrics.executorEvent(finished(w.key, end));
}

describe('try exit reasons', () => {
  const err = (code: string, message = 'x') => ({ name: 'KilnError', code, message });
  it.each([
    [{ outcome: 'success' }, null],
    [{ outcome: 'skipped' }, null],
    [{ outcome: 'failed', error: { name: 'Error', message: 'boom' } }, 'exception'],
    [{ outcome: 'failed', error: err('TASK_FAILED') }, 'exception'],
    [{ outcome: 'failed', error: err('TASK_TIMEOUT') }, 'timeout'],
    [{ outcome: 'failed', error: err('TASK_HEARTBEAT_TIMEOUT') }, 'heartbeat'],
    [{ outcome: 'failed', error: err('TASK_MEMORY_LIMIT'), signal: 'SIGKILL' }, 'out_of_memory'],
    [{ outcome: 'failed', error: err('WORKER_EXITED', 'the worker thread ran out of memory: JavaScript heap out of memory'), exitCode: 1 }, 'out_of_memory'],
    [{ outcome: 'failed', error: err('WORKER_EXITED'), signal: 'SIGKILL' }, 'signal'],
    [{ outcome: 'failed', error: err('WORKER_EXITED'), exitCode: 3 }, 'exit_code'],
    [{ outcome: 'failed', error: err('WORKER_EXITED') }, 'worker_lost'],
    [{ outcome: 'failed', error: err('EXECUTOR') }, 'worker_lost'],
    [{ outcome: 'failed', error: err('TASK_CANCELLED') }, 'cancelled'],
  ] as const)('%j -> %s', (event, reason) => {
    expect(tryExitReason({ error: null, exitCode: null, signal: null, ...event } as Parameters<typeof tryExitReason>[0])).toBe(reason);
  });
});

describe('KilnMetrics', () => {
  it('counts starts, finishes, exits by reason and signal, CPU and the per-try histograms, with exact values', async () => {
    const metrics = new KilnMetrics({ processMetrics: false });
    const executor = observeExecutor(fakeExecutor(), [metrics]);
    playTry(metrics, executor, work('etl', 'manual__1', 'a'));
    playTry(metrics, executor, work('etl', 'manual__1', 'b'));
    playTry(metrics, executor, work('etl', 'manual__1', 'c', 1, 'thread'), { usage: { peakRssBytes: 10 * 1024 * 1024, cpuMs: 500 } });
    playTry(metrics, executor, work('etl', 'manual__1', 'd'), { outcome: 'failed', error: { name: 'Error', message: 'boom' } });
    playTry(metrics, executor, work('etl', 'manual__2', 'e'), { outcome: 'failed', error: { name: 'KilnError', code: 'WORKER_EXITED', message: 'killed' }, signal: 'SIGKILL', usage: { peakRssBytes: null, cpuMs: null } });
    // A callback's work is not a try: it fails here, and counts nowhere.
    const cb = { ...work('etl', 'manual__1', 'd'), key: 'callback:etl/manual__1/d/1/failure', callback: { kind: 'failure' as const, scope: 'task' as const, state: 'failed', reason: 'exception' as const, error: 'boom', exitCode: null, signal: null } };
    playTry(metrics, executor, cb, { outcome: 'failed', error: { name: 'Error', message: 'the pager is down' } });
    // What the engine commits for tasks a..g.
    for (const state of ['success', 'success', 'success', 'failed', 'up_for_retry', 'running', 'upstream_failed', 'removed', 'up_for_reschedule']) metrics.taskInstanceChanged({ dagId: 'etl', state });

    const s = await samples(metrics);
    expect(sampleValue(s, 'kiln_task_instance_starts_total', { dag_id: 'etl' })).toBe(5);
    expect(sampleValue(s, 'kiln_task_instance_finishes_total', { dag_id: 'etl', state: 'success' })).toBe(3);
    expect(sampleValue(s, 'kiln_task_instance_finishes_total', { dag_id: 'etl', state: 'failed' })).toBe(1);
    expect(sampleValue(s, 'kiln_task_instance_finishes_total', { dag_id: 'etl', state: 'upstream_failed' })).toBe(1);
    expect(sampleValue(s, 'kiln_task_instance_finishes_total', { dag_id: 'etl', state: 'removed' })).toBe(1);
    expect(s.filter((x) => x.name === 'kiln_task_instance_finishes_total')).toHaveLength(4); // running, up_for_retry and up_for_reschedule are not finishes
    expect(sampleValue(s, 'kiln_task_instance_retries_total', { dag_id: 'etl' })).toBe(1);
    expect(sampleValue(s, 'kiln_task_try_exits_total', { dag_id: 'etl', reason: 'exception', signal: '' })).toBe(1);
    expect(sampleValue(s, 'kiln_task_try_exits_total', { dag_id: 'etl', reason: 'signal', signal: 'SIGKILL' })).toBe(1);
    expect(s.filter((x) => x.name === 'kiln_task_try_exits_total')).toHaveLength(2);
    expect(sampleValue(s, 'kiln_task_try_cpu_seconds_total', { dag_id: 'etl', isolation: 'process' })).toBeCloseTo(0.06, 9);
    expect(sampleValue(s, 'kiln_task_try_cpu_seconds_total', { dag_id: 'etl', isolation: 'thread' })).toBeCloseTo(0.5, 9);
    expect(sampleValue(s, 'kiln_task_try_duration_seconds_count', { dag_id: 'etl', isolation: 'process', state: 'success' })).toBe(2);
    expect(sampleValue(s, 'kiln_task_try_duration_seconds_count', { dag_id: 'etl', isolation: 'process', state: 'failed' })).toBe(2);
    expect(sampleValue(s, 'kiln_task_try_duration_seconds_sum', { dag_id: 'etl', isolation: 'process', state: 'failed' })).toBeCloseTo(0.06, 9);
    expect(sampleValue(s, 'kiln_task_queued_duration_seconds_count', { dag_id: 'etl', isolation: 'process' })).toBe(4);
    // The killed try reported no memory: three process samples, one thread sample.
    expect(sampleValue(s, 'kiln_task_try_peak_rss_bytes_count', { dag_id: 'etl', isolation: 'process' })).toBe(3);
    expect(sampleValue(s, 'kiln_task_try_peak_rss_bytes_bucket', { dag_id: 'etl', isolation: 'process', le: String(64 * 1024 * 1024) })).toBe(3);
    expect(sampleValue(s, 'kiln_task_try_peak_rss_bytes_bucket', { dag_id: 'etl', isolation: 'process', le: String(32 * 1024 * 1024) })).toBe(0);
    expect(sampleValue(s, 'kiln_task_try_peak_rss_bytes_bucket', { dag_id: 'etl', isolation: 'thread', le: String(16 * 1024 * 1024) })).toBe(1);
    // Never a run id, and no task_id without taskLabels.
    for (const x of s) {
      expect(Object.values(x.labels).join(' ')).not.toMatch(/manual__/);
      expect(x.labels).not.toHaveProperty('task_id');
    }
  });

  it('adds task_id to the per-try histograms only, with taskLabels', async () => {
    const metrics = new KilnMetrics({ processMetrics: false, taskLabels: true });
    const executor = observeExecutor(fakeExecutor(), [metrics]);
    playTry(metrics, executor, work('etl', 'r1', 'load'));
    playTry(metrics, executor, work('etl', 'r2', 'load'), { outcome: 'failed', error: { name: 'Error', message: 'x' } });
    const s = await samples(metrics);
    const withTask = new Set(s.filter((x) => 'task_id' in x.labels).map((x) => x.name.replace(/_(bucket|sum|count)$/, '')));
    expect([...withTask].sort()).toEqual(['kiln_task_queued_duration_seconds', 'kiln_task_try_duration_seconds', 'kiln_task_try_peak_rss_bytes']);
    expect(sampleValue(s, 'kiln_task_try_duration_seconds_count', { dag_id: 'etl', isolation: 'process', state: 'failed', task_id: 'load' })).toBe(1);
    expect(sampleValue(s, 'kiln_task_instance_starts_total', { dag_id: 'etl' })).toBe(2);
  });

  it('fills histogram buckets cumulatively, with +Inf, _sum and _count', async () => {
    const metrics = new KilnMetrics({ processMetrics: false });
    for (const ms of [0.2, 0.7, 3, 3, 40_000_000]) metrics.storeWrite(ms);
    const s = await samples(metrics);
    const bucket = (le: string) => sampleValue(s, 'kiln_store_transaction_duration_seconds_bucket', { le });
    expect(bucket('0.0001')).toBe(0);
    expect(bucket('0.00025')).toBe(1);
    expect(bucket('0.001')).toBe(2);
    expect(bucket('0.0025')).toBe(2);
    expect(bucket('0.005')).toBe(4);
    expect(bucket('5')).toBe(4);
    expect(bucket('+Inf')).toBe(5);
    expect(sampleValue(s, 'kiln_store_transaction_duration_seconds_count')).toBe(5);
    expect(sampleValue(s, 'kiln_store_transaction_duration_seconds_sum')).toBeCloseTo(40_000.0069, 6);
  });

  it('a try that never started counts its exit but no duration, queue time or usage; a refused submit leaves nothing', async () => {
    const metrics = new KilnMetrics({ processMetrics: false });
    const inner = fakeExecutor();
    const executor = observeExecutor(inner, [metrics]);
    const w = work('etl', 'r', 'waiting');
    executor.submit(w);
    expect((await samples(metrics)).find((x) => x.name === 'kiln_executor_slots' && x.labels.state === 'running')?.value).toBe(1);
    metrics.executorEvent(finished(w.key, { outcome: 'failed', error: { name: 'KilnError', code: 'TASK_CANCELLED', message: 'cancelled' }, durationMs: 0 }));
    inner.submit = () => {
      throw new Error('no slot');
    };
    expect(() => executor.submit(work('etl', 'r', 'refused'))).toThrow('no slot');
    const s = await samples(metrics);
    expect(sampleValue(s, 'kiln_task_try_exits_total', { dag_id: 'etl', reason: 'cancelled', signal: '' })).toBe(1);
    expect(s.filter((x) => x.name.startsWith('kiln_task_try_duration') || x.name.startsWith('kiln_task_queued') || x.name.startsWith('kiln_task_try_peak'))).toEqual([]);
    expect(sampleValue(s, 'kiln_task_instance_starts_total', { dag_id: 'etl' })).toBe(0);
    expect(sampleValue(s, 'kiln_executor_slots', { state: 'running' })).toBe(0);
    expect(sampleValue(s, 'kiln_executor_slots', { state: 'open' })).toBe(4);
  });

  it('run duration by state, schedule delay of scheduled runs, zombies, scheduler loop and heartbeat', async () => {
    const metrics = new KilnMetrics({ processMetrics: false });
    const run = { dagId: 'etl', runId: 'scheduled__2026-01-01', runType: 'scheduled', dataIntervalEnd: 1_000_000, startedAt: 1_003_000, endedAt: 1_063_000 };
    metrics.runStarted({ ...run, state: 'running' });
    metrics.runStarted({ ...run, runType: 'manual', state: 'running' }); // no schedule to be late for
    metrics.runFinished({ ...run, state: 'success' });
    metrics.runFinished({ ...run, state: 'failed', endedAt: 1_004_000 });
    metrics.schedulerTick(2);
    metrics.tryLost({ dagId: 'etl', state: 'running' }); // a zombie the scheduler ended
    metrics.schedulerHeartbeat(1_795_000_000_500);
    metrics.schedulerHeartbeat(1_795_000_001_500);
    const s = await samples(metrics);
    expect(sampleValue(s, 'kiln_dag_run_schedule_delay_seconds_count', { dag_id: 'etl' })).toBe(1);
    expect(sampleValue(s, 'kiln_dag_run_schedule_delay_seconds_sum', { dag_id: 'etl' })).toBe(3);
    expect(sampleValue(s, 'kiln_dag_run_duration_seconds_sum', { dag_id: 'etl', state: 'success' })).toBe(60);
    expect(sampleValue(s, 'kiln_dag_run_duration_seconds_sum', { dag_id: 'etl', state: 'failed' })).toBe(1);
    expect(sampleValue(s, 'kiln_scheduler_loop_duration_seconds_count')).toBe(1);
    expect(sampleValue(s, 'kiln_task_try_exits_total', { dag_id: 'etl', reason: 'heartbeat', signal: '' })).toBe(1);
    expect(sampleValue(s, 'kiln_scheduler_heartbeats_total')).toBe(2);
    expect(sampleValue(s, 'kiln_scheduler_last_heartbeat_timestamp_seconds')).toBe(1_795_000_001.5);
  });

  it('passes promtool check metrics, with Node process metrics', async (ctx) => {
    if (!binaryOrNotice('promtool', 'promtool check of the unit exposition')) return ctx.skip();
    const metrics = new KilnMetrics({ taskLabels: true });
    const executor = observeExecutor(fakeExecutor(), [metrics]);
    playTry(metrics, executor, work('etl', 'r', 'a'));
    playTry(metrics, executor, work('etl', 'r', 'b'), { outcome: 'failed', error: { name: 'KilnError', code: 'TASK_TIMEOUT', message: 't' } });
    metrics.attachDatabase(async () => snapshot());
    const { body } = await metrics.scrape();
    expect(body).toMatch(/^process_cpu_user_seconds_total /m);
    const check = promtoolCheck(body);
    expect(check.output).toBe('');
    expect(check.code).toBe(0);
  });
});

function snapshot(over: Partial<DatabaseSnapshot> = {}): DatabaseSnapshot {
  return {
    taskInstances: [
      { dagId: 'etl', state: 'running', pool: 'default_pool', count: 3, poolSlots: 3 },
      { dagId: 'etl', state: 'queued', pool: 'default_pool', count: 1, poolSlots: 1 },
      { dagId: 'etl', state: 'running', pool: 'gpu', count: 1, poolSlots: 2 },
      { dagId: 'etl', state: 'scheduled', pool: 'gpu', count: 4, poolSlots: 8 },
      { dagId: 'report', state: 'scheduled', pool: 'ghost', count: 2, poolSlots: 2 },
    ],
    runs: [{ dagId: 'etl', state: 'running', count: 2 }, { dagId: 'etl', state: 'queued', count: 5 }],
    pools: [{ name: 'default_pool', slots: 128 }, { name: 'gpu', slots: 2 }, { name: 'idle', slots: 4 }],
    importErrors: 3,
    ...over,
  };
}

describe('database gauges', () => {
  it('derive task instances by DAG and state, pool slots, starving tasks, runs and import errors', () => {
    const d = derive(snapshot());
    expect(d.taskInstances).toEqual([
      { labels: ['etl', 'running'], value: 4 },
      { labels: ['etl', 'queued'], value: 1 },
      { labels: ['etl', 'scheduled'], value: 4 },
      { labels: ['report', 'scheduled'], value: 2 },
    ]);
    expect(d.poolSlots).toEqual([
      { labels: ['default_pool', 'open'], value: 124 },
      { labels: ['default_pool', 'running'], value: 3 },
      { labels: ['default_pool', 'queued'], value: 1 },
      { labels: ['gpu', 'open'], value: 0 },
      { labels: ['gpu', 'running'], value: 2 },
      { labels: ['gpu', 'queued'], value: 0 },
      { labels: ['idle', 'open'], value: 4 },
      { labels: ['idle', 'running'], value: 0 },
      { labels: ['idle', 'queued'], value: 0 },
      // A pool the tasks name but the pool table lacks: no open slots to report.
      { labels: ['ghost', 'running'], value: 0 },
      { labels: ['ghost', 'queued'], value: 0 },
    ]);
    expect(d.starving).toEqual([
      { labels: ['default_pool'], value: 0 },
      { labels: ['gpu'], value: 4 },
      { labels: ['idle'], value: 0 },
      { labels: ['ghost'], value: 2 },
    ]);
    expect(d.runs).toEqual([{ labels: ['etl', 'running'], value: 2 }, { labels: ['etl', 'queued'], value: 5 }]);
    expect(d.importErrors).toEqual([{ labels: [], value: 3 }]);
  });

  it('read the database once per cache period, and a failed read leaves them out without failing the scrape', async () => {
    const metrics = new KilnMetrics({ processMetrics: false });
    let reads = 0;
    let fail = false;
    let now = 1_000_000;
    {
      new DatabaseGauges(metrics.registry, async () => {
        reads++;
        if (fail) throw new Error('database away');
        return snapshot({ importErrors: reads });
      }, 5_000, () => now);
      let s = await samples(metrics);
      expect(reads).toBe(1); // one read for all six gauges
      expect(sampleValue(s, 'kiln_dag_import_errors')).toBe(1);
      expect(sampleValue(s, 'kiln_task_instances', { dag_id: 'etl', state: 'running' })).toBe(4);
      expect(sampleValue(s, 'kiln_dag_runs', { dag_id: 'etl', state: 'queued' })).toBe(5);
      expect(sampleValue(s, 'kiln_pool_slots', { pool: 'gpu', state: 'open' })).toBe(0);
      expect(sampleValue(s, 'kiln_pool_starving_tasks', { pool: 'gpu' })).toBe(4);
      expect(sampleValue(s, 'kiln_database_up')).toBe(1);
      now += 4_999;
      s = await samples(metrics);
      expect(reads).toBe(1);
      now += 1;
      s = await samples(metrics);
      expect(reads).toBe(2);
      expect(sampleValue(s, 'kiln_dag_import_errors')).toBe(2);
      fail = true;
      now += 5_000;
      s = await samples(metrics);
      expect(sampleValue(s, 'kiln_database_up')).toBe(0);
      expect(s.filter((x) => x.name === 'kiln_dag_import_errors' || x.name === 'kiln_task_instances')).toEqual([]);
      // A failure is not cached: the next scrape reads again.
      fail = false;
      s = await samples(metrics);
      expect(sampleValue(s, 'kiln_database_up')).toBe(1);
    }
  });
});

describe('/metrics over HTTP', () => {
  it('answers GET and HEAD of /metrics with the text format, 404 elsewhere, 405 for other methods', async () => {
    const metrics = new KilnMetrics({ processMetrics: false });
    metrics.schedulerTick(1);
    const server = await startMetricsServer(metrics, '127.0.0.1', 0);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics?x=1`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await res.text()).toMatch(/^kiln_scheduler_loop_duration_seconds_count 1$/m);
      const head = await fetch(server.url, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
      expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});

describe('--metrics address', () => {
  const config = { metricsHost: '127.0.0.1', metricsPort: null };
  it.each([
    [undefined, null],
    [true, { host: '127.0.0.1', port: 9464 }],
    ['9100', { host: '127.0.0.1', port: 9100 }],
    [':9100', { host: '127.0.0.1', port: 9100 }],
    ['0.0.0.0:9100', { host: '0.0.0.0', port: 9100 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
    ['localhost', { host: 'localhost', port: 9464 }],
  ] as const)('%j -> %j', (flag, expected) => {
    expect(metricsAddress(config, flag)).toEqual(expected);
  });

  it('takes metricsHost/metricsPort from the config, and refuses a bad port', () => {
    expect(metricsAddress({ metricsHost: '0.0.0.0', metricsPort: 9200 })).toEqual({ host: '0.0.0.0', port: 9200 });
    expect(metricsAddress({ metricsHost: '0.0.0.0', metricsPort: 9200 }, true)).toEqual({ host: '0.0.0.0', port: 9200 });
    expect(() => metricsAddress(config, 'host:99999')).toThrow(/no valid port/);
    expect(() => metricsAddress(config, 'a:b:c')).toThrow(/\[host:\]port/);
  });
});

describe('observability settings', () => {
  const project = (values: Record<string, unknown> = {}): string => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-obs-config-'));
    writeFileSync(join(dir, 'kiln.config.json'), JSON.stringify(values));
    return dir;
  };

  it('default to no endpoint, 127.0.0.1, no task labels, text logs, no traces', async () => {
    expect(await loadConfig({ cwd: project(), env: {} })).toMatchObject({ metricsHost: '127.0.0.1', metricsPort: null, metricsTaskLabels: false, logFormat: 'text', otlpEndpoint: null });
  });

  it('come from the file, overridden by KILN_METRICS_HOST/PORT/TASK_LABELS and KILN_LOG_FORMAT', async () => {
    const cwd = project({ metricsHost: '0.0.0.0', metricsPort: 9200, metricsTaskLabels: true, logFormat: 'json' });
    expect(await loadConfig({ cwd, env: {} })).toMatchObject({ metricsHost: '0.0.0.0', metricsPort: 9200, metricsTaskLabels: true, logFormat: 'json' });
    const env = { KILN_METRICS_HOST: '::1', KILN_METRICS_PORT: '0', KILN_METRICS_TASK_LABELS: 'false', KILN_LOG_FORMAT: 'text' };
    expect(await loadConfig({ cwd, env })).toMatchObject({ metricsHost: '::1', metricsPort: 0, metricsTaskLabels: false, logFormat: 'text' });
    expect(await loadConfig({ cwd, env: { KILN_METRICS_PORT: 'off' } })).toMatchObject({ metricsPort: null });
    expect(await loadConfig({ cwd: project({ otlpEndpoint: 'http://collector:4318' }), env: {} })).toMatchObject({ otlpEndpoint: 'http://collector:4318' });
    expect(await loadConfig({ cwd: project({ otlpEndpoint: 'http://collector:4318' }), env: { KILN_OTLP_ENDPOINT: 'off' } })).toMatchObject({ otlpEndpoint: null });
  });

  it('name the setting and its source when a value is bad', async () => {
    await expect(loadConfig({ cwd: project(), env: { KILN_METRICS_PORT: '70000' } })).rejects.toThrow(/KILN_METRICS_PORT must be a port number \(0-65535\) or 'off', got "70000"/);
    await expect(loadConfig({ cwd: project({ metricsTaskLabels: 'yes' }), env: {} })).rejects.toThrow(/'metricsTaskLabels' must be true or false/);
    await expect(loadConfig({ cwd: project({ logFormat: 'xml' }), env: {} })).rejects.toThrow(/'logFormat' must be one of text, json, got "xml"/);
    await expect(loadConfig({ cwd: project(), env: { KILN_OTLP_ENDPOINT: 'collector:4318' } })).rejects.toThrow(/KILN_OTLP_ENDPOINT must be an http\(s\) URL/);
  });
});

describe('the README', () => {
  it("lists every kiln metric in the Observability table, and no metric kiln lacks", async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Observability'), readme.indexOf('### Structured logs'));
    const documented = [...section.matchAll(/^\| `(kiln_[a-z_]+)` \|/gm)].map((m) => m[1]!).sort();
    const metrics = new KilnMetrics({ processMetrics: false });
    metrics.attachDatabase(async () => snapshot());
    const exported = metrics.registry.getMetricsAsArray().map((m) => m.name).sort();
    expect(documented).toEqual(exported);
  });
});
