#!/usr/bin/env node
/**
 * Experiment behind a recommendation in the report (not part of `npm run bench`): does the
 * run engine commit faster when it batches executor events for a little longer than one
 * turn of the event loop? The engine schedules a flush (one SQLite transaction) with
 * setImmediate after the first event; with noop tasks finishing one by one, a flush often
 * carries one or two events, and each transaction costs ~30-60 us of BEGIN/COMMIT.
 *
 * Variants, each a warm kiln context (thread or process executor, SQLite), interleaved:
 *   immediate   kiln as it is (RunEngine.requestFlush -> setImmediate)
 *   window-1ms  the same, but the flush is scheduled with setTimeout(1 ms)
 *   adaptive    setImmediate when the last flush was more than 1 ms ago, else wait for the
 *               rest of that millisecond (a lone event is committed at once; a stream of
 *               events is committed once per millisecond)
 * The patch replaces requestFlush on the engine instance only (same logic otherwise).
 *
 *   node bench/experiments/flush-window.mjs [thread|process] [rounds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_DAG, writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { openBenchContext } from '../lib/kiln.mjs';
import { median } from '../lib/stats.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 7);
const tmp = mkdtempSync(join(tmpdir(), 'kiln-flush-window-'));

function patch(engine, variant) {
  if (variant === 'immediate') return;
  let lastFlushAt = -Infinity;
  engine.requestFlush = function requestFlush() {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const go = () => {
      this.flushScheduled = false;
      lastFlushAt = performance.now();
      void this.flush();
    };
    const sinceMs = performance.now() - lastFlushAt;
    if (variant === 'window-1ms') setTimeout(go, 1);
    else if (sinceMs >= 1) setImmediate(go);
    else setTimeout(go, 1);
  };
}

try {
  const wide = writeDag(tmp, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
  const variants = {};
  for (const v of ['immediate', 'window-1ms', 'adaptive']) {
    const b = await openBenchContext(join(tmp, v), { executor: mode });
    patch(b.ctx.engine, v);
    let writes = 0;
    const write = b.ctx.store.write.bind(b.ctx.store);
    b.ctx.store.write = (batch) => {
      writes++;
      return write(batch);
    };
    const big = await b.loadDag(wide);
    const one = await b.loadDag(EXAMPLE_DAG);
    await b.runConcurrent(big, 40);
    await b.runConcurrent(one, 1);
    variants[v] = { b, big, one, writes: () => writes };
  }
  const measure = (v) => async () => {
    const { b, big, one } = variants[v];
    const w0 = variants[v].writes();
    const r40 = await b.runConcurrent(big, 40);
    const txPerTi = (variants[v].writes() - w0) / r40.tis;
    const r1 = [];
    for (let i = 0; i < 5; i++) r1.push((await b.runConcurrent(one, 1)).wallMs);
    return { tiPerSec: r40.tis / (r40.wallMs / 1000), txPerTi, oneRunMs: median(r1) };
  };
  const out = await interleave(rounds, Object.fromEntries(Object.keys(variants).map((v) => [v, { run: measure(v) }])));
  console.log(`${mode} executor, ${rounds} interleaved rounds: 40 runs x 40 noop tasks, and the 12-task example DAG one run at a time`);
  for (const [v, reps] of Object.entries(out)) {
    console.log(`${v.padEnd(11)} 40x40: ${Math.round(median(reps.map((r) => r.tiPerSec)))} TI/s, ${median(reps.map((r) => r.txPerTi)).toFixed(2)} transactions per TI; 12-task run: ${median(reps.map((r) => r.oneRunMs)).toFixed(2)} ms`);
  }
  for (const v of Object.values(variants)) await v.b.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
