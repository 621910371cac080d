import { availableParallelism } from 'node:os';
import type { KilnConfig } from '../config/load.js';
import type { SerializedDag, TiState } from '../dag/types.js';
import { errorMessage } from '../errors.js';
import { triggerRun } from '../scheduler/run-creation.js';
import { loadRunState } from '../scheduler/run-loading.js';
import type { RunState, TaskInstances } from '../scheduler/run-state.js';
import { StoreOutage } from '../scheduler/store-outage.js';
import { dagModuleOf } from '../scheduler/task-work.js';
import type { CallbackRow, TiRow } from '../store/types.js';
import { describeCallbackFailure } from '../scheduler/callbacks.js';
import { openKilnContext, type KilnContext } from './context.js';
import { dagSourcesFolder, findDag } from './dag-files.js';

/** The `kiln dags test --json` document (part of the user-facing contract). */
export interface DagTestReport {
  dagId: string;
  runId: string;
  runType: string;
  /** ISO 8601. */
  logicalDate: string;
  dataIntervalStart: string;
  dataIntervalEnd: string;
  state: 'success' | 'failed';
  /** Why the run failed (`task_failed`, `timed_out`), else null. */
  failureReason: string | null;
  durationMs: number;
  /** One entry per task instance: a mapped task's instances each with their map index, in (task, map index) order. */
  tasks: Array<{
    taskId: string;
    /** -1 for a task that is not mapped (or a mapped task that never expanded). */
    mapIndex: number;
    state: TiState;
    tries: number;
    durationMs: number | null;
    isolation: string | null;
    exitCode: number | null;
    signal: string | null;
    error: string | null;
    peakRssBytes: number | null;
    cpuMs: number | null;
  }>;
}

export interface DagTestOptions {
  cwd?: string;
  params?: Record<string, unknown>;
  runId?: string;
  /** The run's logical date (default now); its data interval is inferred from it. */
  logicalDate?: number;
  /**
   * Called after every committed task-instance change (the live view): `all` holds every
   * instance by id (`task`, `task[3]` for a mapped one), `tasks` each task's instance ids
   * (in map-index order) and how many are in each state, kept current as they change.
   */
  onTaskChange?: (ti: TiRow, all: ReadonlyMap<string, TiRow>, tasks: ReadonlyMap<string, TaskInstances>) => void;
  /** Reuse a context (benchmarks); otherwise one is built for this run and closed after. */
  context?: KilnContext;
  /** Told when the database goes away and when it is back (the run waits for it meanwhile). */
  log?: (message: string) => void;
}

/**
 * `kiln dags test`: one manual run of one DAG, to completion, inside this process. The
 * context (store, executor, engine) is built once for the run, never per task.
 */
export async function runDagTest(config: KilnConfig, fileOrId: string, options: DagTestOptions = {}): Promise<DagTestReport> {
  const outage = new StoreOutage({
    onDown: (err) => options.log?.(`the database is unreachable (${errorMessage(err)}): waiting for it; results of tasks that end meanwhile are kept`),
    onBack: (downMs) => options.log?.(`the database is back after ${(downMs / 1000).toFixed(1)}s`),
  });
  const onCallbackFailed = (row: CallbackRow, error: string, file: string | null): void => options.log?.(describeCallbackFailure(row, error, file));
  // The parse (in a worker of its own), the store's opening and migration check, and the
  // workers' start overlap: none needs another. A cold run warms no more workers than the
  // machine has cores: each costs tens of ms of CPU to start (a thread also starts Node's
  // loader-hooks thread), more than a short task runs; more start on demand while tasks wait.
  const opening = options.context
    ? Promise.resolve(options.context)
    : openKilnContext(config, {
        warmWorkers: Math.max(1, Math.min(config.parallelism, availableParallelism())),
        engine: { onTaskChange: (run, ti) => options.onTaskChange?.(ti, run.tis, run.byTask), outage, onCallbackFailed },
      });
  opening.catch(() => {}); // its failure is reported where it is awaited, below
  let found: Awaited<ReturnType<typeof findDag>>;
  try {
    found = await findDag(fileOrId, { cwd: options.cwd ?? process.cwd(), dagsFolder: config.dagsFolder, parseTimeoutMs: config.parseTimeoutMs, sourcesDir: dagSourcesFolder(config) });
  } catch (err) {
    if (!options.context) await opening.then((c) => c.close(), () => {});
    throw err;
  }
  const ctx = await opening;
  // The workers import the module while the run is created, not when its first task arrives.
  ctx.executor.preload?.(dagModuleOf(found.file, found.version, dagSourcesFolder(config)));
  const started = performance.now();
  try {
    await ctx.store.upsertDag({ dagId: found.dag.dagId, file: found.file, version: found.version, serialized: found.dag });
    const run = await createManualRun(ctx, found, options);
    ctx.engine.adopt(run);
    const done = await ctx.engine.whenRunFinished(run);
    const durationMs = performance.now() - started;
    // The run's callbacks (committed with the changes that owe them) run before we return.
    await ctx.engine.whenCallbacksDone();
    return report(done, durationMs);
  } finally {
    if (!options.context) await ctx.close();
  }
}

/** Inserts a manual run claimed by this context (the same insert as `kiln dags trigger`). */
export async function createManualRun(ctx: Pick<KilnContext, 'store' | 'schedulerId'>, found: { file: string; version: string; dag: SerializedDag }, options: { params?: Record<string, unknown>; runId?: string; logicalDate?: number }): Promise<RunState> {
  const { run, tis } = await triggerRun(ctx.store, { dagId: found.dag.dagId, version: found.version, serialized: found.dag }, { params: options.params, runId: options.runId, logicalDate: options.logicalDate, claimedBy: ctx.schedulerId });
  return loadRunState(ctx.store, run, found.dag, found.file, tis);
}

function report(run: RunState, durationMs: number): DagTestReport {
  return {
    dagId: run.run.dagId,
    runId: run.run.runId,
    runType: run.run.runType,
    logicalDate: new Date(run.run.logicalDate).toISOString(),
    dataIntervalStart: new Date(run.run.dataIntervalStart).toISOString(),
    dataIntervalEnd: new Date(run.run.dataIntervalEnd).toISOString(),
    state: run.run.state === 'success' ? 'success' : 'failed',
    failureReason: run.run.failureReason ?? null,
    durationMs: Math.round(durationMs * 100) / 100,
    tasks: instancesInOrder(run).map((ti) => ({
      taskId: ti.taskId, mapIndex: ti.mapIndex, state: ti.state, tries: ti.tryNumber, durationMs: ti.durationMs, isolation: ti.isolation,
      exitCode: ti.exitCode, signal: ti.signal, error: ti.error, peakRssBytes: ti.peakRssBytes, cpuMs: ti.cpuMs,
    })),
  };
}

/** Every task instance of the run: the DAG's tasks in order, each task's instances by map index, then any the DAG no longer has. */
function instancesInOrder(run: RunState): TiRow[] {
  const out: TiRow[] = [];
  for (const taskId of run.byTask.keys()) out.push(...run.instances(taskId));
  if (out.length < run.tis.size) {
    const listed = new Set(out);
    for (const ti of run.tis.values()) if (!listed.has(ti)) out.push(ti);
  }
  return out;
}
