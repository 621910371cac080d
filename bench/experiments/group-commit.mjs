#!/usr/bin/env node
/**
 * Experiment behind the group commit in src/scheduler/engine-writer.ts (not part of
 * `npm run bench`): does waiting for the tries the last flush submitted (only after a flush
 * of 2 ms or more) cost anything on SQLite, where flushes take tens of microseconds but a
 * loaded machine can stretch one? Two warm kiln contexts in one process, interleaved:
 *   gather     kiln as it is
 *   no-gather  the same, with the writer's wait patched out (every flush cut at once)
 *
 *   node bench/experiments/group-commit.mjs [thread|process] [rounds]
 */
import { compareEngineVariants } from '../lib/engine-variants.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 7);

await compareEngineVariants({
  mode,
  rounds,
  variants: {
    gather: () => {},
    'no-gather': (ctx) => {
      ctx.engine.writer.gathered = () => undefined;
    },
  },
});
