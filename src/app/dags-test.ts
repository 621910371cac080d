import type { KilnConfig } from '../config/load.js';
import type { SerializedDag, TiState } from '../dag/types.js';
import { triggerRun } from '../scheduler/run-creation.js';
import { RunState } from '../scheduler/run-state.js';
import type { TiRow } from '../store/types.js';
import { openKilnContext, type KilnContext } from './context.js';
import { findDag } from './dag-files.js';

/** The `kiln dags test --json` document (part of the user-facing contract). */
export interface DagTestReport {
  dagId: string;
  runId: string;
  state: 'success' | 'failed';
  durationMs: number;
  tasks: Array<{
    taskId: string;
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
  /** Called after every committed task-instance change (the live view). */
  onTaskChange?: (ti: TiRow, all: ReadonlyMap<string, TiRow>) => void;
  /** Reuse a context (benchmarks); otherwise one is built for this run and closed after. */
  context?: KilnContext;
}

/**
 * `kiln dags test`: one manual run of one DAG, to completion, inside this process. The
 * context (store, executor, engine) is built once for the run, never per task.
 */
export async function runDagTest(config: KilnConfig, fileOrId: string, options: DagTestOptions = {}): Promise<DagTestReport> {
  const found = await findDag(fileOrId, { cwd: options.cwd ?? process.cwd(), dagsFolder: config.dagsFolder, parseTimeoutMs: config.parseTimeoutMs });
  const ctx = options.context ?? (await openKilnContext(config, { engine: { onTaskChange: (run, ti) => options.onTaskChange?.(ti, run.tis) } }));
  const started = performance.now();
  try {
    await ctx.store.upsertDag({ dagId: found.dag.dagId, file: found.file, version: found.version, serialized: found.dag });
    const run = await createManualRun(ctx, found, options);
    ctx.engine.adopt(run);
    const done = await ctx.engine.whenRunFinished(run);
    return report(done, performance.now() - started);
  } finally {
    if (!options.context) await ctx.close();
  }
}

/** Inserts a manual run claimed by this context (the same insert as `kiln dags trigger`). */
export async function createManualRun(ctx: Pick<KilnContext, 'store' | 'schedulerId'>, found: { file: string; version: string; dag: SerializedDag }, options: { params?: Record<string, unknown>; runId?: string }): Promise<RunState> {
  const { run, tis } = await triggerRun(ctx.store, { dagId: found.dag.dagId, version: found.version, serialized: found.dag }, { params: options.params, runId: options.runId, claimedBy: ctx.schedulerId });
  return new RunState(run, found.dag, found.file, tis);
}

function report(run: RunState, durationMs: number): DagTestReport {
  return {
    dagId: run.run.dagId,
    runId: run.run.runId,
    state: run.run.state === 'success' ? 'success' : 'failed',
    durationMs: Math.round(durationMs * 100) / 100,
    tasks: [...run.tis.values()].map((ti) => ({
      taskId: ti.taskId, state: ti.state, tries: ti.tryNumber, durationMs: ti.durationMs, isolation: ti.isolation,
      exitCode: ti.exitCode, signal: ti.signal, error: ti.error, peakRssBytes: ti.peakRssBytes, cpuMs: ti.cpuMs,
    })),
  };
}
