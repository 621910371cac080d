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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_DAG, writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { openBenchContext } from '../lib/kiln.mjs';
import { median } from '../lib/stats.mjs';

const mode = process.argv[2] ?? 'thread';
const rounds = Number(process.argv[3] ?? 7);
const tmp = mkdtempSync(join(tmpdir(), 'kiln-group-commit-'));

try {
  const wide = writeDag(tmp, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
  const variants = {};
  for (const v of ['gather', 'no-gather']) {
    const b = await openBenchContext(join(tmp, v), { executor: mode });
    if (v === 'no-gather') b.ctx.engine.writer.gathered = () => undefined;
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
  console.log(`${mode} executor on SQLite, ${rounds} interleaved rounds: 40 runs x 40 noop tasks, and the 12-task example DAG one run at a time`);
  for (const [v, reps] of Object.entries(out)) {
    console.log(`${v.padEnd(10)} 40x40: ${Math.round(median(reps.map((r) => r.tiPerSec)))} TI/s, ${median(reps.map((r) => r.txPerTi)).toFixed(3)} transactions per TI; 12-task run: ${median(reps.map((r) => r.oneRunMs)).toFixed(2)} ms`);
  }
  for (const v of Object.values(variants)) await v.b.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
