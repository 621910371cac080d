/**
 * The frame of the run-engine experiments in bench/experiments/ (flush-window.mjs,
 * group-commit.mjs): one warm kiln context per variant in this process (SQLite), each
 * patched by its variant's function, measured interleaved: 40 runs x 40 noop tasks
 * (TI/s, transactions per task instance) and the 12-task example DAG one run at a time.
 *
 *   await compareEngineVariants({ mode: 'thread', rounds: 7, variants: { as_is: () => {}, other: (ctx) => ... } });
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE_DAG, writeDag } from './dags.mjs';
import { interleave } from './interleave.mjs';
import { countStoreWrites, openBenchContext } from './kiln.mjs';
import { median } from './stats.mjs';

export async function compareEngineVariants({ mode, rounds, variants: patches }) {
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-engine-variants-'));
  try {
    const wide = writeDag(tmp, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
    const variants = {};
    for (const [v, patch] of Object.entries(patches)) {
      const b = await openBenchContext(join(tmp, v), { executor: mode });
      patch(b.ctx);
      const writes = countStoreWrites(b.ctx);
      const big = await b.loadDag(wide);
      const one = await b.loadDag(EXAMPLE_DAG);
      await b.runConcurrent(big, 40);
      await b.runConcurrent(one, 1);
      variants[v] = { b, big, one, writes };
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
    const width = Math.max(...Object.keys(variants).map((v) => v.length)) + 1;
    for (const [v, reps] of Object.entries(out)) {
      console.log(`${v.padEnd(width)} 40x40: ${Math.round(median(reps.map((r) => r.tiPerSec)))} TI/s, ${median(reps.map((r) => r.txPerTi)).toFixed(3)} transactions per TI; 12-task run: ${median(reps.map((r) => r.oneRunMs)).toFixed(2)} ms`);
    }
    for (const v of Object.values(variants)) await v.b.close();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
