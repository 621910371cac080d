/**
 * What an operator does to a run from another process (`kiln tasks clear|mark`), written so
 * that the scheduler driving the run notices and never runs one task instance twice at once:
 *
 * - a task instance is (task, map index): a mapped task has one per map index (0..N-1), any
 *   other task one (-1). Clearing a task clears every instance of it; clearing one instance
 *   (a map index) clears only that one (and with downstream, every instance of the tasks
 *   after it). Marking names exactly one instance: a mapped task needs its map index;
 * - every task-instance change is a compare-and-set on (task instance, try number, state),
 *   so a change that races with the scheduler fails on one side and is retried or reported;
 * - queued and running task instances are never cleared (their tries still run somewhere);
 * - the run is set back to 'queued'. The scheduler that holds it sees that on its next tick
 *   (claimRuns returns the runs it holds) and merges the changed task instances
 *   (RunEngine.refresh); a finished run is claimed and adopted afresh by any scheduler.
 */
import { downstreamMap } from '../dag/graph.js';
import { UNMAPPED, type SerializedDag, type TiState } from '../dag/types.js';
import { KilnError, UsageError } from '../errors.js';
import type { RunRow, RunWrite, Store, TiRow, TiWrite } from '../store/types.js';
import { isActive, RunState, tiIdOf } from './run-state.js';

export interface RunContext {
  run: RunRow;
  dag: SerializedDag;
  tis: TiRow[];
}

/** Loads a run, the DAG version it runs, and its task instances (one run: not a loop). */
export async function loadRun(store: Store, dagId: string, runId: string): Promise<RunContext> {
  const run = await store.getRun(dagId, runId);
  if (!run) throw new KilnError('RUN_NOT_FOUND', `DAG '${dagId}' has no run '${runId}'`);
  const dag = await store.getDagVersion(dagId, run.dagVersion);
  if (!dag) throw new KilnError('DAG_NOT_FOUND', `version ${run.dagVersion} of DAG '${dagId}' (of run '${runId}') is not in the database`);
  return { run, dag, tis: await store.getTaskInstances(dagId, runId) };
}

export interface ClearOptions {
  taskId?: string;
  /** Only this instance of `taskId` (a mapped task's map index; -1 an unmapped task's one); default every instance. */
  mapIndex?: number;
  downstream?: boolean;
  /** Also hand the run to this owner (`kiln backfill` drives what it clears); undefined: leave the claim. */
  claimFor?: string | null;
  /** The run changed between our read and our write: set it to queued anyway (default true). */
  requeueOnConflict?: boolean;
  /** Only say what would be cleared; write nothing. */
  dryRun?: boolean;
}

export interface ClearResult {
  /** The task instances cleared, by id: the task id, `task[3]` for a mapped instance (see tiId). */
  cleared: string[];
  /** Queued or running: left alone. */
  skipped: Array<{ taskId: string; mapIndex: number; state: TiState }>;
  /** Changed by someone else between our read and our write (ids as in `cleared`). */
  conflicts: string[];
}

/**
 * Resets task instances to 'none' so they run again (a new try number each), and the run to
 * 'queued'. Each cleared task gets its retries again, as Airflow's clear does (maxTries =
 * tries so far + retries + 1). Without `taskId` every task instance of the run is cleared.
 * A `removed` mapped instance goes back to none as well: the engine expands the task again
 * when it runs, and removes the instance again if its index is still past the new length.
 */
export async function clearTasks(store: Store, ctx: RunContext, options: ClearOptions = {}): Promise<ClearResult> {
  return (await clearAndTell(store, ctx, options)).result;
}

/** clearTasks, also telling whether the run was set back to queued by this clear's own compare-and-set. */
export async function clearAndTell(store: Store, ctx: RunContext, options: ClearOptions = {}): Promise<{ result: ClearResult; runRequeued: boolean }> {
  const { run, dag, tis } = ctx;
  /** Whole tasks to clear (every instance), and at most one single instance (by tiId). */
  const targets = new Set<string>();
  let single: string | null = null;
  if (options.taskId === undefined) {
    if (options.mapIndex !== undefined) throw new UsageError('a map index needs a task id');
    for (const ti of tis) targets.add(ti.taskId);
  } else {
    if (options.mapIndex === undefined) requireTask(ctx, options.taskId);
    else single = tiIdOf(requireInstance(ctx, options.taskId, options.mapIndex));
    if (single === null) targets.add(options.taskId);
    if (options.downstream) {
      const down = downstreamMap(dag.tasks);
      const stack = [options.taskId];
      while (stack.length > 0) {
        for (const d of down.get(stack.pop()!) ?? []) {
          if (targets.has(d)) continue;
          targets.add(d);
          stack.push(d);
        }
      }
    }
  }
  const retries = new Map(dag.tasks.map((t) => [t.taskId, t.retries]));
  const result: ClearResult = { cleared: [], skipped: [], conflicts: [] };
  const writes: TiWrite[] = [];
  for (const ti of tis) {
    if (!targets.has(ti.taskId) && tiIdOf(ti) !== single) continue;
    if (isActive(ti.state)) {
      result.skipped.push({ taskId: ti.taskId, mapIndex: ti.mapIndex, state: ti.state });
      continue;
    }
    writes.push({
      row: {
        ...ti, state: 'none', maxTries: ti.tryNumber + (retries.get(ti.taskId) ?? ti.maxTries - 1) + 1,
        queuedAt: null, startedAt: null, endedAt: null, durationMs: null, pid: null, exitCode: null, signal: null, error: null,
        peakRssBytes: null, cpuMs: null, lastHeartbeatAt: null, queuedBy: null, nextRetryAt: null, firstPokeAt: null,
      },
      expect: { tryNumber: ti.tryNumber, states: [ti.state] },
    });
  }
  if (writes.length === 0) return { result, runRequeued: false };
  // A dry run: what would be cleared, as read now (a conflict only shows on the real write).
  if (options.dryRun) return { result: { ...result, cleared: writes.map((w) => tiIdOf(w.row)) }, runRequeued: false };
  const runWrite: RunWrite = { dagId: run.dagId, runId: run.runId, expectStates: [run.state], set: { state: 'queued', endedAt: null, failureReason: null, ...claimAfterClear(run, options.claimFor) } };
  const applied = await store.write({ tis: writes, runs: [runWrite] });
  applied.tis.forEach((ok, i) => (ok ? result.cleared : result.conflicts).push(tiIdOf(writes[i]!.row)));
  if (!applied.runs[0] && options.requeueOnConflict !== false) await requeueRun(store, run.dagId, run.runId);
  return { result, runRequeued: applied.runs[0] === true };
}

/**
 * Sets one task instance to success or failed by hand: an unmapped task's one instance, or
 * the instance `mapIndex` of a mapped task (which needs it). A run still active is set back
 * to 'queued' so the scheduler driving it takes the change into account (and cancels the
 * try if it was running); a finished run gets its outcome recomputed here.
 */
export async function markTask(
  store: Store, ctx: RunContext, taskId: string, state: 'success' | 'failed', now = Date.now(), options: { dryRun?: boolean; mapIndex?: number } = {},
): Promise<{ changed: boolean; runState: RunRow['state']; ti: TiRow }> {
  const { run } = ctx;
  const ti = requireInstance(ctx, taskId, options.mapIndex);
  const id = tiIdOf(ti);
  if (ti.state === state) return { changed: false, runState: run.state, ti };
  const marked: TiRow = {
    ...ti, state, startedAt: ti.startedAt ?? now, endedAt: now, durationMs: ti.durationMs ?? (ti.startedAt === null ? 0 : now - ti.startedAt),
    error: state === 'failed' ? 'marked failed by hand' : null, nextRetryAt: null,
  };
  let runWrite: RunWrite | null = null;
  if (run.state === 'queued' || run.state === 'running') {
    runWrite = { dagId: run.dagId, runId: run.runId, expectStates: [run.state], set: { state: 'queued' } };
  } else {
    const after = new RunState(run, ctx.dag, '', ctx.tis.map((t) => (tiIdOf(t) === id ? marked : t))).outcome() ?? run.state;
    if (after !== run.state) runWrite = { dagId: run.dagId, runId: run.runId, expectStates: [run.state], set: { state: after, endedAt: now } };
  }
  // A dry run: what would change, as read now.
  if (options.dryRun) return { changed: true, runState: runWrite?.set.state ?? run.state, ti };
  const applied = await store.write({ tis: [{ row: marked, expect: { tryNumber: ti.tryNumber, states: [ti.state] } }], runs: runWrite ? [runWrite] : [] });
  if (!applied.tis[0]) throw new KilnError('STORE', `task instance '${id}' of run '${run.runId}' changed while it was being marked (now try ${ti.tryNumber}?); look at \`kiln runs show\` and try again`);
  if (runWrite && !applied.runs[0]) await requeueRun(store, run.dagId, run.runId);
  return { changed: true, runState: runWrite?.set.state ?? run.state, ti };
}

/**
 * Who holds a run once it is cleared: `claimFor` when given; nobody when it had finished (its
 * last driver may be long gone, so any scheduler takes it at once instead of after the
 * takeover time); else whoever drives it now (it merges the change).
 */
function claimAfterClear(run: RunRow, claimFor: string | null | undefined): { claimedBy?: string | null } {
  if (claimFor !== undefined) return { claimedBy: claimFor };
  return run.state === 'success' || run.state === 'failed' ? { claimedBy: null } : {};
}

/** The run changed state between our read and our write: set it back to 'queued' from whatever it is now. */
async function requeueRun(store: Store, dagId: string, runId: string): Promise<void> {
  await store.write({ runs: [{ dagId, runId, expectStates: ['queued', 'running', 'success', 'failed'], set: { state: 'queued', endedAt: null, failureReason: null } }] });
}

function requireTask(ctx: Pick<RunContext, 'run' | 'tis'>, taskId: string): TiRow[] {
  const instances = ctx.tis.filter((t) => t.taskId === taskId);
  if (instances.length === 0) {
    throw new KilnError('TASK_NOT_FOUND', `run '${ctx.run.runId}' of DAG '${ctx.run.dagId}' has no task '${taskId}' (tasks: ${[...new Set(ctx.tis.map((t) => t.taskId))].join(', ')})`);
  }
  return instances;
}

/**
 * One task instance of a run: the task's only instance when `mapIndex` is undefined (an
 * error naming its map indexes if the task is mapped), else the one at `mapIndex` (an error
 * naming those that exist if there is none).
 */
export function requireInstance(ctx: Pick<RunContext, 'run' | 'tis'>, taskId: string, mapIndex: number | undefined): TiRow {
  return pickInstance(ctx.run, requireTask(ctx, taskId), taskId, mapIndex);
}

/** requireInstance over the instances of one task (at least one), read by the caller. */
export function pickInstance(run: Pick<RunRow, 'dagId' | 'runId'>, instances: readonly TiRow[], taskId: string, mapIndex: number | undefined): TiRow {
  const mapped = instances.some((t) => t.mapIndex >= 0);
  const where = `task '${taskId}' of run '${run.runId}'`;
  if (mapIndex === undefined) {
    if (!mapped) return instances.find((t) => t.mapIndex === UNMAPPED) ?? instances[0]!;
    throw new UsageError(`${where} is mapped: name one of its instances by map index (it has ${formatMapIndexes(instances.map((t) => t.mapIndex))})`);
  }
  const ti = instances.find((t) => t.mapIndex === mapIndex);
  if (ti) return ti;
  if (!mapped) throw new KilnError('TASK_NOT_FOUND', `${where} is not mapped: its one instance has map index -1, not ${mapIndex}`);
  throw new KilnError('TASK_NOT_FOUND', `${where} has no map index ${mapIndex} (it has ${formatMapIndexes(instances.map((t) => t.mapIndex))})`);
}

/**
 * Map indexes as short ranges, in order: `0..9999`, `0..3, 5, 7..9` (a task's 10,000
 * instances never make a 10,000-number message).
 */
export function formatMapIndexes(indexes: Iterable<number>): string {
  const sorted = [...new Set(indexes)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}..${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}
