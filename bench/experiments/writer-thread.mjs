#!/usr/bin/env node
/**
 * Experiment for issue 13's "take SQLite off the scheduler's critical path" (not part of
 * `npm run bench`): how much would a dedicated writer thread give? The profiles put a third
 * to a half of the scheduler's main thread in SQLite (BEGIN/COMMIT and statements). Two warm
 * kiln contexts in one process, interleaved:
 *   inline         kiln as it is: the run engine's write batches run on the main thread
 *   writer-thread  the same, with the context's store.write() patched to post each batch to
 *                  a worker thread that owns a second connection to the same SQLite file and
 *                  answers with the batch's result (structured clone both ways); reads stay
 *                  on the main thread's connection (WAL: they see what the writer committed)
 *
 *   node bench/experiments/writer-thread.mjs [thread|process] [rounds]
 *
 * 2026-11-30, 2-core AMD EPYC @ 2.1 GHz, Node 20.20.2, load ~0-1.5 (writer-thread / inline):
 * thread, 5 rounds: 40 x 40 3,240 / 4,003 TI/s (0.81x), the 12-task run 7.11 / 3.82 ms;
 * process, 3 rounds: 2,203 / 2,012 TI/s (1.09x; 0.31 / 0.43 transactions per TI, as a slower
 * flush gathers more), the 12-task run 8.33 / 5.28 ms. Not pursued: the hop to the writer
 * and back costs more than SQLite saves on the main thread, and on 2 cores the writer's
 * thread takes CPU the pool's workers need.
 */
import { Worker } from 'node:worker_threads';
import { compareEngineVariants } from '../lib/engine-variants.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 7);
const storeModule = new URL('../../dist/src/store/index.js', import.meta.url).href;

const WRITER = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.storeModule).then(async ({ createStore }) => {
  const store = await createStore(workerData.url);
  parentPort.on('message', async ({ id, batch }) => {
    try {
      parentPort.postMessage({ id, result: await store.write(batch) });
    } catch (err) {
      parentPort.postMessage({ id, error: String(err && err.stack || err) });
    }
  });
});`;

const writers = [];

function writerThread(ctx) {
  const worker = new Worker(WRITER, { eval: true, workerData: { storeModule, url: ctx.config.databaseUrl } });
  writers.push(worker);
  const pending = new Map();
  let seq = 0;
  worker.on('message', ({ id, result, error }) => {
    const p = pending.get(id);
    pending.delete(id);
    if (error !== undefined) p.reject(new Error(error));
    else p.resolve(result);
  });
  ctx.store.write = (batch) =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, batch });
    });
}

await compareEngineVariants({ mode, rounds, variants: { inline: () => {}, 'writer-thread': writerThread } });
await Promise.all(writers.map((w) => w.terminate()));
