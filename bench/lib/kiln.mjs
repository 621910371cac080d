/**
 * Driving kiln from the benchmarks, through the same pieces `kiln dags test` and the
 * scheduler use (dist/): openKilnContext (store + executor + run engine, built once),
 * createManualRun + engine.adopt, and runDagTest with a shared context.
 *
 * End to end here means: the run engine deciding readiness, the executor running tasks in
 * its pool, and every state change committed to SQLite, several runs at once.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openKilnContext } from '../../dist/src/app/context.js';
import { findDag } from '../../dist/src/app/dag-files.js';
import { createManualRun, runDagTest } from '../../dist/src/app/dags-test.js';
import { schedulerMetrics, serveMetrics } from '../../dist/src/app/metrics.js';
import { loadConfig } from '../../dist/src/config/load.js';
import { createStore } from '../../dist/src/store/index.js';

let runSeq = 0;

/** Counts the store.write() calls (engine flushes: one transaction each) of this context from now on; returns the count's reader. */
export function countStoreWrites(ctx) {
  let writes = 0;
  const write = ctx.store.write.bind(ctx.store);
  ctx.store.write = (batch) => {
    writes++;
    return write(batch);
  };
  return () => writes;
}

/** A KilnConfig for a scratch home: SQLite file in it, no kiln.config file, no KILN_* env. */
export async function benchConfig(home, { executor, parallelism, databaseUrl, ...rest } = {}) {
  mkdirSync(home, { recursive: true });
  return loadConfig({
    cwd: home,
    env: {},
    flags: {
      executor,
      parallelism,
      homeDir: home,
      dagsFolder: home,
      databaseUrl: databaseUrl ?? `sqlite:${join(home, 'kiln.db')}`,
      // Heartbeats every 5 s by default: leave them as a user would have them.
      ...rest,
    },
  });
}

/**
 * Records, per task try, the time from executor.submit() to the executor's `finished`
 * event as the engine receives it, and the work the task reported (its return value, ms).
 * Patches the two entry points on this context's instances only (bench-only).
 */
export function instrument(ctx) {
  const submittedAt = new Map();
  let samples = [];
  const submit = ctx.executor.submit.bind(ctx.executor);
  ctx.executor.submit = (work) => {
    submittedAt.set(work.key, performance.now());
    submit(work);
  };
  const onEvent = ctx.engine.onExecutorEvent;
  ctx.engine.onExecutorEvent = (event) => {
    if (event.type === 'finished') {
      const t0 = submittedAt.get(event.key);
      if (t0 !== undefined) {
        submittedAt.delete(event.key);
        const workMs = typeof event.value === 'number' ? event.value : 0;
        samples.push({ latencyMs: performance.now() - t0, workMs, durationMs: event.durationMs, outcome: event.outcome });
      }
    }
    onEvent(event);
  };
  return {
    take() {
      const out = samples;
      samples = [];
      return out;
    },
  };
}

/**
 * A context with kiln's Prometheus metrics wired as `kiln scheduler --metrics` wires them
 * (app/scheduler.ts): the store opened first and its write transactions timed
 * (schedulerMetrics), the KilnMetrics registry as the context's observer, `/metrics` served
 * over HTTP on 127.0.0.1 (a free port). What the bench does not have is the scheduler loop,
 * so its per-tick hooks (loop duration, heartbeats, DAG folder passes) are not fed here.
 */
async function openWithMetrics(config) {
  const store = await createStore(config.databaseUrl);
  try {
    await store.migrate();
    const metrics = await schedulerMetrics(config, store);
    const server = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 });
    try {
      const ctx = await openKilnContext(config, { store, observers: [metrics] });
      return {
        ctx,
        metricsUrl: server.url,
        async close() {
          try {
            await ctx.close();
          } finally {
            await server.close();
            await store.close();
          }
        },
      };
    } catch (err) {
      await server.close();
      throw err;
    }
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/** `metrics: true`: with kiln's Prometheus metrics on, as the scheduler has them (see openWithMetrics). */
export async function openBenchContext(home, configOptions, { metrics = false } = {}) {
  const config = await benchConfig(home, configOptions);
  const opened = metrics ? await openWithMetrics(config) : null;
  const ctx = opened ? opened.ctx : await openKilnContext(config);
  const probe = instrument(ctx);
  const dags = new Map();
  return {
    config,
    ctx,
    probe,
    /** Where `/metrics` is served (metrics on), else null. */
    metricsUrl: opened?.metricsUrl ?? null,
    /** Parses a DAG file once (in kiln's parse worker) and records it, as the scheduler would. */
    async loadDag(file) {
      let found = dags.get(file);
      if (found) return found;
      found = await findDag(file, { cwd: home, dagsFolder: config.dagsFolder, parseTimeoutMs: config.parseTimeoutMs });
      await ctx.store.upsertDag({ dagId: found.dag.dagId, file: found.file, version: found.version, serialized: found.dag });
      dags.set(file, found);
      return found;
    },
    /**
     * Creates `runs` manual runs of a loaded DAG, hands all of them to the engine, and waits
     * until every one has finished. Returns wall time (creation included) and TI count.
     */
    async runConcurrent(found, runs) {
      const started = performance.now();
      const waits = [];
      for (let i = 0; i < runs; i++) {
        const run = await createManualRun(ctx, found, { runId: `bench__${process.pid}_${++runSeq}` });
        ctx.engine.adopt(run);
        waits.push(ctx.engine.whenRunFinished(run));
      }
      const done = await Promise.all(waits);
      const wallMs = performance.now() - started;
      let tis = 0;
      const failed = [];
      const isolations = new Set();
      for (const r of done) {
        tis += r.tis.size;
        for (const ti of r.tis.values()) isolations.add(ti.isolation);
        if (r.run.state !== 'success') failed.push(`${r.run.runId}: ${r.run.state} (${[...r.tis.values()].filter((t) => t.state !== 'success').map((t) => `${t.taskId} ${t.state} ${t.error ?? ''}`).join('; ')})`);
      }
      if (failed.length > 0) throw new Error(`bench runs did not succeed: ${failed.slice(0, 3).join(' | ')}`);
      return { wallMs, tis, isolations: [...isolations] };
    },
    /** `kiln dags test` as the CLI runs it (it parses the file each call), on this context. */
    async dagTest(file) {
      const started = performance.now();
      const report = await runDagTest(config, file, { cwd: home, context: ctx });
      if (report.state !== 'success') throw new Error(`dags test of ${file} ended ${report.state}`);
      return { wallMs: performance.now() - started, tis: report.tasks.length };
    },
    close: () => (opened ? opened.close() : ctx.close()),
  };
}
