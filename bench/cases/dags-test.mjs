/**
 * Case 2, per-task overhead of `kiln dags test` (the seed's cached in-process API): a
 * 100-task noop DAG with the execution context (store + executor + run engine) built once
 * per run against built per task (bench/lib/per-task-context.mjs, a benchmark-only variant).
 *
 * Per executor (thread, process), interleaved per repetition:
 *   cli       runDagTest(config, file): what `kiln dags test` does, the context built once
 *             for the run (parsing the file, opening and closing the context included)
 *   warm      the same 100 tasks on a context already open: the per-task overhead itself
 *             (chain: one task at a time like Airflow's dag.test(); flat: all 100 at once)
 *   per-task  a fresh context for every task (sampled to the first N tasks at small scales)
 */
import { join } from 'node:path';
import { runDagTest } from '../../dist/src/app/dags-test.js';
import { findDag } from '../../dist/src/app/dag-files.js';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { benchConfig, openBenchContext } from '../lib/kiln.mjs';
import { runWithContextPerTask } from '../lib/per-task-context.mjs';
import { fmt, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { median, ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'dags-test';
export const title = 'Per-task overhead of `kiln dags test`: context once per run vs per task (case 2)';
const TASKS = 100;

export async function run({ scale, log, tmpDir }) {
  const executors = scale === 'smoke' ? ['thread'] : ['thread', 'process'];
  const reps = pick(scale, { smoke: 1, quick: 2, full: 7 });
  const perTaskReps = pick(scale, { smoke: 1, quick: 1, full: 2 });
  const perTaskTasks = pick(scale, { smoke: 3, quick: 3, full: 25 });
  const cliReps = pick(scale, { smoke: 1, quick: 1, full: reps });
  const chain = writeDag(tmpDir, { dagId: 'bench_chain100_noop', shape: 'chain', tasks: TASKS, work: 'noop' });
  const flat = writeDag(tmpDir, { dagId: 'bench_flat100_noop', shape: 'flat', tasks: TASKS, work: 'noop', maxActiveTasks: TASKS });

  const byExecutor = {};
  for (const executor of executors) {
    const warm = await openBenchContext(join(tmpDir, `${executor}-warm`), { executor });
    try {
      const cliConfig = await benchConfig(join(tmpDir, `${executor}-cli`), { executor });
      const perTaskConfig = await benchConfig(join(tmpDir, `${executor}-per-task`), { executor });
      const chainFound = await warm.loadDag(chain);
      const flatFound = await warm.loadDag(flat);
      const perTaskFound = await findDag(chain, { cwd: tmpDir, dagsFolder: tmpDir, parseTimeoutMs: 30_000 });
      // Warm-up: the warm context's workers import both DAG modules; the JIT sees every path once.
      await warm.runConcurrent(chainFound, 1);
      await warm.runConcurrent(flatFound, 1);
      await runDagTest(cliConfig, chain, { cwd: tmpDir });
      await runWithContextPerTask(perTaskConfig, perTaskFound, { maxTasks: 1 });

      const latencies = [];
      const out = await interleave(reps, {
        cli: {
          reps: cliReps,
          run: async () => {
            const t0 = performance.now();
            const report = await runDagTest(cliConfig, chain, { cwd: tmpDir });
            if (report.state !== 'success') throw new Error(`dags test ended ${report.state}`);
            return (performance.now() - t0) / TASKS;
          },
        },
        warmChain: {
          run: async () => {
            warm.probe.take();
            const { wallMs, tis } = await warm.runConcurrent(chainFound, 1);
            latencies.push(...warm.probe.take().map((s) => s.latencyMs));
            return wallMs / tis;
          },
        },
        warmFlat: { run: async () => (await warm.runConcurrent(flatFound, 1)).wallMs / TASKS },
        perTask: {
          reps: perTaskReps,
          run: async () => {
            const { wallMs, tasks } = await runWithContextPerTask(perTaskConfig, perTaskFound, { maxTasks: perTaskTasks });
            return wallMs / tasks;
          },
        },
      }, { onRound: (r) => log(`${executor}: round ${r + 1}/${reps} done`) });
      byExecutor[executor] = {
        cliMsPerTask: summary(out.cli),
        warmChainMsPerTask: summary(out.warmChain),
        warmFlatMsPerTask: summary(out.warmFlat),
        perTaskMsPerTask: summary(out.perTask),
        chainSubmitToFinishedMs: median(latencies),
      };
      const e = byExecutor[executor];
      log(`${executor}: cli ${fmt(e.cliMsPerTask.median)} ms/task, warm chain ${fmt(e.warmChainMsPerTask.median)}, warm flat ${fmt(e.warmFlatMsPerTask.median)}, per-task context ${fmt(e.perTaskMsPerTask.median)}`);
    } finally {
      await warm.close();
    }
  }
  const t = byExecutor.thread;
  return {
    params: { tasks: TASKS, reps, cliReps, perTaskReps, perTaskTasks, executors },
    byExecutor,
    headline: {
      executor: 'thread',
      perTaskMs: t.warmChainMsPerTask.median,
      perTaskUncachedMs: t.perTaskMsPerTask.median,
      ratio: ratio(t.perTaskMsPerTask.median, t.warmChainMsPerTask.median),
    },
  };
}

export function render(r) {
  const p = r.params;
  const rows = [];
  for (const [executor, e] of Object.entries(r.byExecutor)) {
    rows.push([executor, fmtSummary(e.warmChainMsPerTask, 'ms'), fmtSummary(e.warmFlatMsPerTask, 'ms'), fmtSummary(e.cliMsPerTask, 'ms'), fmtSummary(e.perTaskMsPerTask, 'ms'), fmtRatio(ratio(e.perTaskMsPerTask.median, e.cliMsPerTask.median)), fmt(e.chainSubmitToFinishedMs)]);
  }
  const md = [
    `A ${p.tasks}-task noop DAG, SQLite, ${p.reps} interleaved rounds (\`kiln dags test\`: ${p.cliReps}; the per-task-context variant: ${p.perTaskReps} round(s) of the first ${p.perTaskTasks} tasks${p.perTaskTasks < p.tasks ? ', sampled' : ''}). ms per task = wall time of the run / tasks.`,
    '- **warm context, chain**: the tasks one after another (each waits for the previous, as Airflow\'s `dag.test()` runs them) on a context that is already open: the per-task overhead of scheduling, dispatching, running and committing a task. **flat**: all 100 independent, at once.',
    '- **`kiln dags test`, context once per run**: `runDagTest(config, file)` as the CLI calls it: parse the file in a worker, open the context, run the chain, close; the fixed cost spread over 100 tasks.',
    '- **context per task**: a fresh store connection (migration check, prepared statements), executor (pre-warmed pool that imports the DAG module again) and run engine for every task, closed after it.',
    '',
    table(['executor', 'warm context, chain (per-task overhead)', 'warm context, flat', '`kiln dags test`, context once per run', 'context per task', 'per task / once per run', 'chain: submit -> finished median (ms)'], rows),
    '',
    'The seed (Airflow `dag.test()`, 10-task noop DAG): 1.25 s per task with the execution API built per task, 0.20 s cached (6x).',
  ].join('\n');
  const bars = [];
  for (const [executor, e] of Object.entries(r.byExecutor)) {
    bars.push({ label: `${executor}: warm, chain`, value: e.warmChainMsPerTask.median, color: colorFor(executor) });
    bars.push({ label: `${executor}: context once per run`, value: e.cliMsPerTask.median, color: colorFor(executor) });
    bars.push({ label: `${executor}: context per task`, value: e.perTaskMsPerTask.median, color: colorFor('spawn') });
  }
  return { markdown: md, charts: [{ name: 'dags-test', alt: 'ms per task, context once vs per task', svg: barChart({ title: 'kiln dags test: ms per task', unit: 'ms', log: true, bars, target: { value: 0.3, label: '0.3 ms target' } }) }] };
}
