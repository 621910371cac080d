/**
 * `kiln scheduler --metrics` end to end, as an operator runs it: known runs of a DAG whose
 * tasks succeed, throw and die of SIGKILL, then `/metrics` is scraped and its counters and
 * label sets checked exactly (no series carries a run id); `promtool check metrics` passes
 * on the output; and a real Prometheus server scraping the live scheduler answers a query
 * for kiln_task_instance_finishes_total with the same numbers. promtool and prometheus come
 * from Debian's `prometheus` package (.ci/run installs it); without them those parts are
 * skipped with a notice.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { binaryOrNotice, freePort, parseExposition, promtoolCheck, sampleValue, startPrometheus, type Sample } from '../helpers/prometheus.js';
import { exitOf, startScheduler, until } from '../fixtures/scheduler/harness.js';

const DAGS = join(REPO, 'test/fixtures/metrics');
const databases = await databasesUnderTest('metrics');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

async function scrape(port: number): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

/** Scrapes until `ready` holds (or fails after the deadline), then returns that scrape. */
async function scrapeUntil(port: number, what: string, ready: (s: Sample[]) => boolean): Promise<{ text: string; samples: Sample[] }> {
  let last: { text: string; samples: Sample[] } | null = null;
  try {
    return await until(async () => {
      last = await scrape(port).catch(() => null);
      return last !== null && ready(last.samples) ? last : null;
    }, what, 60_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last scrape:\n${(last as { text: string } | null)?.text.split('\n').filter((l) => l.startsWith('kiln_') && !l.includes('_bucket')).join('\n')}`);
  }
}

async function triggerRuns(cwd: string, env: Record<string, string>, count: number): Promise<string[]> {
  const trigger = await runKiln(['dags', 'trigger', 'metered', '--count', String(count), '--json'], { cwd, env });
  expect(trigger.code, trigger.stderr).toBe(0);
  return (JSON.parse(trigger.stdout) as { runs: Array<{ runId: string }> }).runs.map((r) => r.runId);
}

describe.each(databases)('kiln scheduler --metrics on $name', (db) => {
  it('counts known runs exactly, with bounded labels and never a run id; promtool accepts the output', async () => {
    const cwd = scratchProject('kiln-metrics-');
    const env = { KILN_DAGS_FOLDER: DAGS, KILN_DATABASE_URL: db.url(cwd), KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
    const runIds = await triggerRuns(cwd, env, 2);
    const port = await freePort();
    const scheduler = startScheduler(['--metrics', `127.0.0.1:${port}`, '--executor', 'process'], { cwd, env });
    try {
      // Both runs ended (a run's end is counted after every change of its task instances), and
      // the scrape-time gauges (cached up to 5 s) have seen the broken DAG file.
      const { text, samples } = await scrapeUntil(port, 'both runs counted and the import error seen', (s) =>
        sampleValue(s, 'kiln_dag_run_duration_seconds_count', { dag_id: 'metered', state: 'failed' }) === 2 && sampleValue(s, 'kiln_dag_import_errors') === 1);

      const kiln = samples.filter((s) => s.name.startsWith('kiln_'));
      const of = (name: string) => kiln.filter((s) => s.name === name).map((s) => ({ ...s.labels, value: s.value }));
      expect(of('kiln_task_instance_starts_total')).toEqual([{ dag_id: 'metered', value: 10 }]);
      expect(of('kiln_task_instance_finishes_total')).toEqual(expect.arrayContaining([
        { dag_id: 'metered', state: 'success', value: 6 },
        { dag_id: 'metered', state: 'failed', value: 4 },
      ]));
      expect(of('kiln_task_instance_finishes_total')).toHaveLength(2);
      expect(of('kiln_task_try_exits_total')).toEqual(expect.arrayContaining([
        { dag_id: 'metered', reason: 'exception', signal: '', value: 2 },
        { dag_id: 'metered', reason: 'signal', signal: 'SIGKILL', value: 2 },
      ]));
      expect(of('kiln_task_try_exits_total')).toHaveLength(2);
      expect(sampleValue(samples, 'kiln_task_try_duration_seconds_count', { dag_id: 'metered', isolation: 'thread', state: 'success' })).toBe(2);
      expect(sampleValue(samples, 'kiln_task_try_duration_seconds_count', { dag_id: 'metered', isolation: 'process', state: 'success' })).toBe(4);
      expect(sampleValue(samples, 'kiln_task_try_duration_seconds_count', { dag_id: 'metered', isolation: 'process', state: 'failed' })).toBe(4);
      expect(sampleValue(samples, 'kiln_task_queued_duration_seconds_count', { dag_id: 'metered', isolation: 'process' })).toBe(8);
      // Every try that ran reports its peak memory (the SIGKILLed ones too, from the supervisor's samples or not at all).
      const rssCount = (isolation: string) => sampleValue(samples, 'kiln_task_try_peak_rss_bytes_count', { dag_id: 'metered', isolation }) ?? 0;
      expect(rssCount('thread')).toBe(2);
      expect(rssCount('process')).toBeGreaterThanOrEqual(6);
      expect(sampleValue(samples, 'kiln_task_try_cpu_seconds_total', { dag_id: 'metered', isolation: 'process' })).toBeGreaterThan(0);
      expect(sampleValue(samples, 'kiln_dag_run_duration_seconds_count', { dag_id: 'metered', state: 'success' })).toBeUndefined();
      expect(sampleValue(samples, 'kiln_executor_slots', { state: 'running' })).toBe(0);
      expect(sampleValue(samples, 'kiln_executor_slots', { state: 'open' })).toBe(4);
      expect(sampleValue(samples, 'kiln_pool_slots', { pool: 'default_pool', state: 'running' })).toBe(0);
      // Each SIGKILL took a process worker with it: replaced, reason crashed.
      expect(of('kiln_worker_recycles_total')).toEqual([{ isolation: 'process', reason: 'crashed', value: 2 }]);
      expect(sampleValue(samples, 'kiln_worker_pool_workers', { isolation: 'process', state: 'idle' })).toBeGreaterThanOrEqual(1);
      expect(sampleValue(samples, 'kiln_worker_pool_workers', { isolation: 'thread', state: 'idle' })).toBeGreaterThanOrEqual(1);
      expect(sampleValue(samples, 'kiln_database_up')).toBe(1);
      expect(sampleValue(samples, 'kiln_scheduler_heartbeats_total')).toBeGreaterThan(0);
      expect(sampleValue(samples, 'kiln_scheduler_last_heartbeat_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(sampleValue(samples, 'kiln_dag_parse_duration_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(sampleValue(samples, 'kiln_store_transaction_duration_seconds_count')).toBeGreaterThan(0);
      expect(sampleValue(samples, 'kiln_scheduler_loop_duration_seconds_count')).toBeGreaterThan(0);
      expect(samples.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);

      // Labels: only the documented ones; never a run id (nor any value naming one).
      const allowed = new Set(['dag_id', 'task_id', 'state', 'pool', 'isolation', 'reason', 'signal', 'le']);
      for (const s of kiln) {
        for (const [label, value] of Object.entries(s.labels)) {
          expect(allowed.has(label), `${s.name} has label ${label}`).toBe(true);
          for (const runId of runIds) expect(value).not.toContain(runId);
        }
      }
      expect(text).not.toMatch(/manual__/);

      if (binaryOrNotice('promtool', 'promtool check metrics on the scheduler output')) {
        const check = promtoolCheck(text);
        expect(check.output).toBe('');
        expect(check.code).toBe(0);
      }

      scheduler.child.kill('SIGTERM');
      expect((await exitOf(scheduler)).code, scheduler.output()).toBe(0);
      expect(scheduler.output()).toContain(`serving metrics at http://127.0.0.1:${port}/metrics`);
    } finally {
      scheduler.child.kill('SIGKILL');
    }
  });
});

describe('a real Prometheus server scraping kiln scheduler --metrics', () => {
  it('answers kiln_task_instance_finishes_total with the numbers of the runs', async (ctx) => {
    if (!binaryOrNotice('prometheus', 'the Prometheus scrape test')) return ctx.skip();
    const cwd = scratchProject('kiln-metrics-prom-');
    const env = { KILN_DAGS_FOLDER: DAGS, KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms', KILN_METRICS_PORT: String(await freePort()) };
    await triggerRuns(cwd, env, 1);
    // The address from the environment (KILN_METRICS_PORT), no flag needed.
    const scheduler = startScheduler(['--executor', 'process'], { cwd, env });
    const prometheus = await startPrometheus(`127.0.0.1:${env.KILN_METRICS_PORT}`);
    try {
      const finishes = await until(async () => {
        const result = await prometheus.query('kiln_task_instance_finishes_total{dag_id="metered"}').catch(() => []);
        const byState = Object.fromEntries(result.map((r) => [r.metric.state, Number(r.value[1])]));
        return byState.success === 3 && byState.failed === 2 ? result : null;
      }, 'Prometheus to have scraped both finish counts', 60_000).catch((err: Error) => {
        throw new Error(`${err.message}\nprometheus output:\n${prometheus.output().slice(-3000)}\nscheduler output:\n${scheduler.output()}`);
      });
      expect(finishes).toHaveLength(2);
      for (const r of finishes) {
        expect(Object.keys(r.metric).sort()).toEqual(['__name__', 'dag_id', 'instance', 'job', 'state']);
        expect(r.metric.job).toBe('kiln');
      }
      const exits = await prometheus.query('sum by (reason, signal) (kiln_task_try_exits_total{dag_id="metered"})');
      expect(exits.map((r) => [r.metric.reason, r.metric.signal ?? '', Number(r.value[1])]).sort()).toEqual([['exception', '', 1], ['signal', 'SIGKILL', 1]]);
      const up = await prometheus.query('up{job="kiln"}');
      expect(up.map((r) => Number(r.value[1]))).toEqual([1]);

      // The example Grafana dashboard: every query is valid PromQL for this Prometheus, and
      // names only metrics kiln serves (or Node's process metrics).
      // (Families by their TYPE lines: a gauge may have no series now, kiln_dag_runs with no active run.)
      const served = new Set([...(await scrape(Number(env.KILN_METRICS_PORT))).text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
      const dashboard = JSON.parse(readFileSync(join(REPO, 'examples/grafana/kiln-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
      const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
      expect(exprs.length).toBeGreaterThan(20);
      for (const { panel, expr } of exprs) {
        const query = expr.replaceAll('$__rate_interval', '1m').replaceAll('$dag_id', '.*').replaceAll('$job', '.*');
        await expect(prometheus.query(query), `${panel}: ${expr}`).resolves.toBeInstanceOf(Array);
        for (const name of query.match(/\b(kiln|process|nodejs)_[a-z_]+/g) ?? []) expect(served.has(name.replace(/_(bucket|sum|count)$/, '')), `${panel}: ${name}`).toBe(true);
      }
    } finally {
      await prometheus.stop();
      scheduler.child.kill('SIGTERM');
      await exitOf(scheduler);
    }
  });
});

describe('kiln scheduler --metrics on an address in use', () => {
  it('stops at start with exit 2, naming the address', async () => {
    const busy = createServer();
    const port = await new Promise<number>((resolve) => busy.listen(0, '127.0.0.1', () => resolve((busy.address() as { port: number }).port)));
    try {
      const res = await runKiln(['scheduler', '--metrics', `127.0.0.1:${port}`], { cwd: scratchProject('kiln-metrics-busy-'), env: { KILN_DAGS_FOLDER: DAGS } });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`cannot serve metrics on 127.0.0.1:${port}: listen EADDRINUSE`);
    } finally {
      busy.close();
    }
  });
});
