/**
 * One warm kiln context in a process of its own, driven by the case process over IPC. The
 * executor-mode comparison keeps one server per mode (thread, process, spawn) open at once
 * and sends them the same scenario in turn (A B C A B C ...): each mode stays warm between
 * rounds, and the peak RSS a server reports is its own process tree only.
 *
 * Requests: { id, cmd: 'open' | 'load' | 'run' | 'profile' | 'dagTest' | 'close', ... };
 * replies { id, ok, value | error }. The client samples this process tree's RSS during 'run'.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { openBenchContext } from './kiln.mjs';

let bench = null;

/** Counters now minus counters before, nested objects too (bench/lib/pg-count.mjs). */
const countsSince = (now, before) => (typeof now === 'number' ? now - (before ?? 0) : Object.fromEntries(Object.entries(now).map(([k, v]) => [k, countsSince(v, before?.[k])])));

const handlers = {
  /** `metrics: true`: kiln's Prometheus metrics on, as the scheduler wires them; metricsUrl is where to scrape. */
  async open({ home, config, metrics = false }) {
    bench = await openBenchContext(home, config, { metrics });
    return { executor: bench.config.executor, parallelism: bench.config.parallelism, defaultIsolation: bench.config.defaultIsolation, pid: process.pid, metricsUrl: bench.metricsUrl };
  },
  async load({ file }) {
    const found = await bench.loadDag(file);
    return { dagId: found.dag.dagId, tasks: found.dag.tasks.length };
  },
  /** Runs `runs` concurrent runs of a loaded DAG file, measured. */
  async run({ file, runs }) {
    const found = await bench.loadDag(file);
    bench.probe.take();
    // PostgreSQL round trips, when bench/lib/pg-count.mjs is preloaded (the postgres case), and
    // then also the engine's flushes (store.write: one transaction each, never two at once).
    const pg0 = globalThis.__kilnBenchPgCounts?.();
    const write = bench.ctx.store.write;
    const flushes = pg0 ? { n: 0, ms: 0 } : null;
    if (flushes) {
      bench.ctx.store.write = async (batch) => {
        const t0 = performance.now();
        try {
          return await write.call(bench.ctx.store, batch);
        } finally {
          flushes.n++;
          flushes.ms += performance.now() - t0;
        }
      };
    }
    const cpu0 = process.cpuUsage();
    let result;
    try {
      result = await bench.runConcurrent(found, runs);
    } finally {
      if (flushes) bench.ctx.store.write = write;
    }
    const { wallMs, tis, isolations } = result;
    const cpu = process.cpuUsage(cpu0);
    const pg1 = globalThis.__kilnBenchPgCounts?.();
    const samples = bench.probe.take();
    return {
      wallMs,
      tis,
      isolations,
      ...(pg0 ? { pgCounts: countsSince(pg1, pg0), flushes } : {}),
      tiPerSec: tis / (wallMs / 1000),
      // CPU of this process (scheduler, SQLite, and in thread mode the worker threads too).
      cpuMs: (cpu.user + cpu.system) / 1000,
      overheadMs: samples.map((s) => s.latencyMs - s.workMs),
      workMs: samples.map((s) => s.workMs),
    };
  },
  /**
   * Runs `reps` x `runs` concurrent runs under V8's CPU profiler (this process's main
   * thread: run engine, store, supervisor; in thread mode the workers are other threads)
   * and writes the .cpuprofile to `out`.
   */
  async profile({ file, runs, reps, out }) {
    const found = await bench.loadDag(file);
    await bench.runConcurrent(found, runs); // warm
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    let transactions = 0;
    const write = bench.ctx.store.write;
    bench.ctx.store.write = (batch) => {
      transactions++;
      return write.call(bench.ctx.store, batch);
    };
    const pg0 = globalThis.__kilnBenchPgCounts?.();
    await session.post('Profiler.start');
    let tis = 0;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) tis += (await bench.runConcurrent(found, runs)).tis;
    const wallMs = performance.now() - t0;
    const { profile } = await session.post('Profiler.stop');
    const pg1 = globalThis.__kilnBenchPgCounts?.();
    session.disconnect();
    bench.ctx.store.write = write;
    writeFileSync(out, JSON.stringify(profile));
    return { out, wallMs, tis, transactions, ...(pg0 ? { pgCounts: countsSince(pg1, pg0) } : {}) };
  },
  async dagTest({ file }) {
    return bench.dagTest(file);
  },
  async close() {
    if (bench) await bench.close();
    bench = null;
    return true;
  },
};

process.on('message', async (msg) => {
  let reply;
  try {
    reply = { id: msg.id, ok: true, value: await handlers[msg.cmd](msg) };
  } catch (err) {
    reply = { id: msg.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  // After close, leave even if a pool forgot to unref something.
  process.send(reply, () => {
    if (msg.cmd === 'close') process.exit(0);
  });
});
