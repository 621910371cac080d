#!/usr/bin/env node
/**
 * Experiment behind two recommendations in the report (not part of `npm run bench`). The
 * profiles of the missed throughput and dags-test targets show the scheduler's main thread
 * spending most of its time in SQLite, a third of it in BEGIN/COMMIT. Two changes, each
 * applied from outside (bench-only patches of one context's instances), alone and together:
 *
 *   one-state-index  the SQLite schema indexes task_instance twice on state:
 *                    `task_instance_state_idx (state)` and `task_instance_state_heartbeat_idx
 *                    (state, last_heartbeat_at)`; the second serves every query the first
 *                    does (leftmost prefix), and every state change rewrites both. Variant:
 *                    the first one dropped.
 *   lazy-started     every dispatch costs two transactions: RunEngine.flush() commits the
 *                    queued rows and submits the tries; the executor emits 'started' for each
 *                    in a microtask (LocalExecutor: queueMicrotask -> emit 'started'), which
 *                    lands while flush() is still in its do/while loop, so it commits again, a
 *                    transaction holding only queued -> running. Variant: 'started' events are
 *                    held back and applied just before the next other event (committed with
 *                    it, typically the try's 'finished'), or after at most 50 ms.
 *
 * Measured, interleaved: a 100-task noop chain run on its own (`kiln dags test` per-task
 * overhead) and 40 runs x 40 noop tasks (throughput), with transactions per task instance.
 *
 *   node bench/experiments/store-writes.mjs [thread|process] [rounds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { countStoreWrites, openBenchContext } from '../lib/kiln.mjs';
import { median } from '../lib/stats.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 9);
const tmp = mkdtempSync(join(tmpdir(), 'kiln-store-writes-'));

function dropStateIndex(home) {
  const db = new Database(join(home, 'kiln.db'));
  // IF EXISTS: the schema has dropped it since ("store: drop the task_instance (state) index"),
  // so this variant now measures as-is; kept so the experiment still runs as it was reported.
  db.exec('DROP INDEX IF EXISTS task_instance_state_idx');
  db.close();
}

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

const VARIANTS = {
  'as-is': [],
  'one-state-index': ['index'],
  'lazy-started': ['lazy'],
  both: ['index', 'lazy'],
};

try {
  const chain = writeDag(tmp, { dagId: 'bench_chain100_noop', shape: 'chain', tasks: 100, work: 'noop' });
  const wide = writeDag(tmp, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
  const variants = {};
  for (const [name, changes] of Object.entries(VARIANTS)) {
    const home = join(tmp, name);
    const b = await openBenchContext(home, { executor: mode });
    if (changes.includes('index')) dropStateIndex(home);
    if (changes.includes('lazy')) lazyStarted(b.ctx.engine);
    const writes = countStoreWrites(b.ctx);
    const c = await b.loadDag(chain);
    const w = await b.loadDag(wide);
    await b.runConcurrent(c, 1);
    await b.runConcurrent(w, 40);
    variants[name] = {
      b,
      run: async () => {
        const w0 = writes();
        const rc = await b.runConcurrent(c, 1);
        const w1 = writes();
        const rw = await b.runConcurrent(w, 40);
        return { chainMsPerTask: rc.wallMs / rc.tis, chainTxPerTask: (w1 - w0) / rc.tis, tiPerSec: rw.tis / (rw.wallMs / 1000), txPerTi: (writes() - w1) / rw.tis };
      },
    };
  }
  const out = await interleave(rounds, variants);
  console.log(`${mode} executor, ${rounds} interleaved rounds (medians): 100-task noop chain alone, and 40 runs x 40 noop tasks`);
  const base = median(out['as-is'].map((x) => x.tiPerSec));
  for (const [v, r] of Object.entries(out)) {
    const tput = median(r.map((x) => x.tiPerSec));
    console.log(`${v.padEnd(16)} chain ${median(r.map((x) => x.chainMsPerTask)).toFixed(3)} ms/task (${median(r.map((x) => x.chainTxPerTask)).toFixed(2)} tx/task); 40x40 ${Math.round(tput)} TI/s (${((tput / base - 1) * 100).toFixed(0)}%, ${median(r.map((x) => x.txPerTi)).toFixed(2)} tx/TI)`);
  }
  for (const v of Object.values(variants)) await v.b.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
