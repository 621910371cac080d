/**
 * The deliberately uncached variant of `kiln dags test` (benchmark only, the counterpart of
 * Airflow's dag.test() creating an InProcessExecutionAPI per task): one run of a DAG where
 * every task instance gets a context of its own, opened for it and closed after it (a
 * fresh store connection with its migration check and prepared statements, a fresh executor
 * with its pre-warmed pool, which imports the DAG module again, and a fresh run engine).
 *
 * Each task is driven by its own engine through a one-task view of the run (the task with
 * no upstream, its task-instance row as stored), in topological order, so the database
 * sees the same task-instance writes a normal run makes. Each one-task engine finishes the
 * run row when its task ends; the harness sets it back to running for the next task, so
 * no compare-and-set fails and the last task leaves the run finished.
 */
import { openKilnContext } from '../../dist/src/app/context.js';
import { createManualRun } from '../../dist/src/app/dags-test.js';
import { RunState } from '../../dist/src/scheduler/run-state.js';
import { createStore } from '../../dist/src/store/index.js';

let seq = 0;

/** Runs `found` (from findDag) with a fresh context per task; returns wall time and tasks run. */
export async function runWithContextPerTask(config, found, { maxTasks = Infinity } = {}) {
  const started = performance.now();
  // Creating the run is the CLI's part, before any task: one store for it, then closed.
  const store = await createStore(config.databaseUrl);
  let run;
  try {
    await store.migrate();
    await store.upsertDag({ dagId: found.dag.dagId, file: found.file, version: found.version, serialized: found.dag });
    run = await createManualRun({ store, schedulerId: 'bench-per-task' }, found, { runId: `bench_per_task__${process.pid}_${++seq}` });
    // The run starts as the engine would start it: running in the database and in every view.
    await store.write({ runs: [{ dagId: run.run.dagId, runId: run.run.runId, expectStates: ['queued'], set: { state: 'running', startedAt: Date.now() } }] });
  } finally {
    await store.close();
  }
  const order = topological(found.dag.tasks).slice(0, maxTasks);
  for (const task of order) {
    const ctx = await openKilnContext(config);
    try {
      const ti = await ctx.store.getTaskInstance({ dagId: run.run.dagId, runId: run.run.runId, taskId: task.taskId });
      const view = new RunState({ ...run.run, state: 'running' }, { ...found.dag, tasks: [{ ...task, upstream: [] }] }, found.file, [ti]);
      ctx.engine.adopt(view);
      const done = await ctx.engine.whenRunFinished(view);
      const state = done.tis.get(task.taskId)?.state;
      if (state !== 'success') throw new Error(`per-task context: ${task.taskId} ended ${state}`);
      if (task !== order[order.length - 1]) {
        await ctx.store.write({ runs: [{ dagId: run.run.dagId, runId: run.run.runId, expectStates: ['success', 'failed'], set: { state: 'running' } }] });
      }
    } finally {
      await ctx.close();
    }
  }
  return { wallMs: performance.now() - started, tasks: order.length };
}

function topological(tasks) {
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  const done = new Set();
  const out = [];
  const visit = (t) => {
    if (done.has(t.taskId)) return;
    done.add(t.taskId);
    for (const u of t.upstream) visit(byId.get(u));
    out.push(t);
  };
  for (const t of tasks) visit(t);
  return out;
}
