#!/usr/bin/env node
/**
 * Experiment behind a recommendation in the report (not part of `npm run bench`): does the
 * run engine commit faster when it batches executor events for a little longer than one
 * turn of the event loop? The engine schedules a flush (one SQLite transaction) with
 * setImmediate after the first event; with noop tasks finishing one by one, a flush often
 * carries one or two events, and each transaction costs ~30-60 us of BEGIN/COMMIT.
 *
 * Variants, each a warm kiln context (thread or process executor, SQLite), interleaved:
 *   immediate   kiln as it is (EngineWriter.requestFlush -> setImmediate)
 *   window-1ms  the same, but the flush is scheduled with setTimeout(1 ms)
 *   adaptive    setImmediate when the last flush was more than 1 ms ago, else wait for the
 *               rest of that millisecond (a lone event is committed at once; a stream of
 *               events is committed once per millisecond)
 * The patch replaces requestFlush on the engine's writer only (same logic otherwise).
 *
 *   node bench/experiments/flush-window.mjs [thread|process] [rounds]
 */
import { compareEngineVariants } from '../lib/engine-variants.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 7);

/** Replaces the writer's scheduling of an urgent flush (engine-writer.ts); everything else is kiln's. */
function patch(engine, variant) {
  if (variant === 'immediate') return;
  const writer = engine.writer;
  const kilns = writer.requestFlush.bind(writer);
  let lastFlushAt = -Infinity;
  writer.requestFlush = function requestFlush(urgent = true) {
    // Lazy writes, an outage's retry timer, a flush under way or already scheduled: as kiln does.
    if (!urgent || this.retryTimer !== null || this.failure !== null || this.flushing || this.flushScheduled) return kilns(urgent);
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

await compareEngineVariants({
  mode,
  rounds,
  variants: Object.fromEntries(['immediate', 'window-1ms', 'adaptive'].map((v) => [v, (ctx) => patch(ctx.engine, v)])),
});
