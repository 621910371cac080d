#!/usr/bin/env node
/**
 * Experiment behind a recommendation in the report (not part of `npm run bench`): every
 * dispatch costs the run engine two transactions. RunEngine.flush() commits the queued rows,
 * submits the tries, and the executor emits 'started' for each in a microtask
 * (LocalExecutor, queueMicrotask -> emit 'started'), which lands while the flush is still in
 * its do/while loop, so the loop commits again, a transaction holding only queued -> running.
 * Variant 'lazy-started': 'started' events are held back and applied just before the next
 * other event (so they are committed with it, typically the try's 'finished'), or after at
 * most 50 ms if nothing else comes (the state change still reaches the database well within
 * any heartbeat or queued timeout).
 *
 * The patch wraps RunEngine.onExecutorEvent on the instance; applyEvent/requestFlush are the
 * engine's own (TypeScript-private, called from JavaScript).
 *
 *   node bench/experiments/lazy-started.mjs [thread|process] [rounds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { openBenchContext } from '../lib/kiln.mjs';
import { median } from '../lib/stats.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 9);
const tmp = mkdtempSync(join(tmpdir(), 'kiln-lazy-started-'));

function lazyStarted(engine) {
  let held = [];
  let timer = null;
  const apply = (event) => {
    try {
      engine.applyEvent(event);
    } catch (err) {
      engine.options.onError?.(err);
    }
  };
  const release = () => {
    const events = held;
    held = [];
    for (const e of events) apply(e);
  };
  engine.onExecutorEvent = (event) => {
    if (event.type === 'started') {
      held.push(event);
      timer ??= setTimeout(() => {
        timer = null;
        release();
        engine.requestFlush();
      }, 50);
      return;
    }
    release();
    apply(event);
    engine.requestFlush();
  };
}

try {
  const chain = writeDag(tmp, { dagId: 'bench_chain100_noop', shape: 'chain', tasks: 100, work: 'noop' });
  const wide = writeDag(tmp, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
  const variants = {};
  for (const v of ['as-is', 'lazy-started']) {
    const b = await openBenchContext(join(tmp, v), { executor: mode });
    if (v === 'lazy-started') lazyStarted(b.ctx.engine);
    let writes = 0;
    const write = b.ctx.store.write.bind(b.ctx.store);
    b.ctx.store.write = (batch) => {
      writes++;
      return write(batch);
    };
    const c = await b.loadDag(chain);
    const w = await b.loadDag(wide);
    await b.runConcurrent(c, 1);
    await b.runConcurrent(w, 40);
    variants[v] = {
      b,
      run: async () => {
        const w0 = writes;
        const rc = await b.runConcurrent(c, 1);
        const txPerTask = (writes - w0) / rc.tis;
        const rw = await b.runConcurrent(w, 40);
        return { chainMsPerTask: rc.wallMs / rc.tis, txPerTask, tiPerSec: rw.tis / (rw.wallMs / 1000) };
      },
    };
  }
  const out = await interleave(rounds, variants);
  console.log(`${mode}, ${rounds} interleaved rounds: 100-task noop chain (one task at a time) and 40 runs x 40 noop tasks`);
  for (const [v, r] of Object.entries(out)) {
    console.log(`${v.padEnd(13)} chain ${median(r.map((x) => x.chainMsPerTask)).toFixed(3)} ms/task, ${median(r.map((x) => x.txPerTask)).toFixed(2)} transactions/task; 40x40 ${Math.round(median(r.map((x) => x.tiPerSec)))} TI/s`);
  }
  for (const v of Object.values(variants)) await v.b.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
