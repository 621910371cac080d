/**
 * In-memory bookkeeping of one DAG run: its task instances (one per task, or one per map
 * index of a mapped task), the downstream map and per-task state counts. Pure: no I/O. The engine asks it what became ready
 * when a task instance finishes, so readiness is decided per event, for the downstream
 * tasks of what changed only, never by scanning every task instance of every run.
 */
import { decides, skippedBy } from '../dag/decisions.js';
import { downstreamMap } from '../dag/graph.js';
import { mapSourceTasks } from '../dag/mapping.js';
import { evaluateTriggerRule, type UpstreamCounts } from '../dag/trigger-rules.js';
import { FINISHED_TI_STATES, TI_STATES, UNMAPPED, type ResolvedTaskOptions, type SerializedDag, type TiState } from '../dag/types.js';
import type { DataInterval, RunRow, TiRow } from '../store/types.js';

export type SerializedTask = SerializedDag['tasks'][number];

const FINISHED = new Set<TiState>(FINISHED_TI_STATES);
export const isFinished = (state: TiState): boolean => FINISHED.has(state);
/** States in which a task instance holds an executor slot (or is about to). */
export const isActive = (state: TiState): boolean => state === 'queued' || state === 'running';

/** One task's instances in a run: their ids in map-index order and how many are in each state. */
export interface TaskInstances {
  /** Task-instance ids (see tiId): the task's one id, or one per map index once it is expanded. */
  readonly ids: string[];
  readonly counts: Record<TiState, number>;
}

const noCounts = (): Record<TiState, number> => Object.fromEntries(TI_STATES.map((s) => [s, 0])) as Record<TiState, number>;

/**
 * The id of a task instance within its run: the task id, with `[mapIndex]` for a mapped
 * instance (a task id never holds '[').
 */
export function tiId(taskId: string, mapIndex: number): string {
  return mapIndex < 0 ? taskId : `${taskId}[${mapIndex}]`;
}

export const tiIdOf = (ti: Pick<TiRow, 'taskId' | 'mapIndex'>): string => tiId(ti.taskId, ti.mapIndex);

export class RunState {
  readonly tasks: Map<string, SerializedTask>;
  readonly downstream: Map<string, string[]>;
  /** Every task instance, by tiId. */
  readonly tis = new Map<string, TiRow>();
  /** Each task's instances (see TaskInstances). */
  readonly byTask = new Map<string, TaskInstances>();
  /** XCom values produced while this run was in memory (others are read from the store), by tiId. */
  readonly xcoms = new Map<string, unknown>();
  /** The items of each mapped task as last expanded (ctx.item of instance i is items[i]). */
  readonly mapItems = new Map<string, unknown[]>();
  unfinished = 0;
  active = 0;
  /** Set when the store rejected one of our writes: someone else changed this run. */
  stale = false;
  /**
   * The data interval of the DAG's latest successful run before this one (the task context's
   * prevDataIntervalStartSuccess/EndSuccess), read once when the run is loaded; null: none.
   */
  prevSuccess: DataInterval | null = null;
  /** Set when the run passed its dagrunTimeout: it fails however its task instances ended. */
  timedOut = false;
  /** Finished branches and short-circuits -> the tasks their result skips (see dag/decisions.ts). */
  readonly decisions = new Map<string, Set<string>>();
  /** Unmapped tasks a mapped task maps over: their result must be mappable (see dag/mapping.ts). */
  readonly mapSources = new Set<string>();

  constructor(
    public run: RunRow,
    readonly dag: SerializedDag,
    readonly dagFile: string,
    tis: Iterable<TiRow>,
  ) {
    this.tasks = new Map(dag.tasks.map((t) => [t.taskId, t]));
    this.downstream = downstreamMap(dag.tasks);
    for (const t of dag.tasks) this.byTask.set(t.taskId, { ids: [], counts: noCounts() });
    for (const t of dag.tasks) if (t.map) for (const s of mapSourceTasks(t.map)) if (!this.tasks.get(s)?.map) this.mapSources.add(s);
    const rows = [...tis].sort((a, b) => a.mapIndex - b.mapIndex);
    for (const ti of rows) this.add(ti);
  }

  get key(): string {
    return runKey(this.run.dagId, this.run.runId);
  }

  /** Every instance of a task, in map-index order. */
  instances(taskId: string): TiRow[] {
    return this.byTask.get(taskId)!.ids.map((id) => this.tis.get(id)!);
  }

  /** True once a mapped task has instances with map indexes (it was expanded). */
  isExpanded(taskId: string): boolean {
    const ids = this.byTask.get(taskId)!.ids;
    return ids.length > 0 && this.tis.get(ids[0]!)!.mapIndex >= 0;
  }

  /** Replaces a task instance's row, keeping the counters right. */
  replace(next: TiRow): void {
    const id = tiIdOf(next);
    const prev = this.tis.get(id)!;
    this.unfinished += (isFinished(prev.state) ? 1 : 0) - (isFinished(next.state) ? 1 : 0);
    this.active += (isActive(next.state) ? 1 : 0) - (isActive(prev.state) ? 1 : 0);
    const counts = this.byTask.get(next.taskId)?.counts;
    if (counts !== undefined) {
      counts[prev.state]--;
      counts[next.state]++;
    }
    this.tis.set(id, next);
  }

  /** Takes in a task instance that is new to the run (an expansion's), after those of its task. */
  add(ti: TiRow): void {
    const id = tiIdOf(ti);
    this.tis.set(id, ti);
    if (!isFinished(ti.state)) this.unfinished++;
    if (isActive(ti.state)) this.active++;
    const group = this.byTask.get(ti.taskId);
    if (group === undefined) return; // a row of a task its DAG version does not have: counted, never scheduled
    group.ids.push(id);
    group.counts[ti.state]++;
  }

  /** Drops a task instance (a mapped task's placeholder once it is expanded). */
  remove(id: string): void {
    const ti = this.tis.get(id)!;
    this.tis.delete(id);
    if (!isFinished(ti.state)) this.unfinished--;
    if (isActive(ti.state)) this.active--;
    const group = this.byTask.get(ti.taskId);
    if (group === undefined) return;
    group.ids.splice(group.ids.indexOf(id), 1);
    group.counts[ti.state]--;
  }

  /**
   * What the trigger rule says for a task whose instances have not started: run, wait, or
   * finish them as skipped / upstream_failed without running. Every instance of a mapped
   * upstream counts; a removed one counts as no upstream at all.
   */
  decide(taskId: string): 'run' | 'wait' | 'skipped' | 'upstream_failed' {
    const task = this.tasks.get(taskId)!;
    for (const [decider, skips] of this.decisions) {
      if (skips.has(taskId) && this.tis.get(decider)?.state === 'success') return 'skipped';
    }
    if (task.upstream.length === 0) return 'run';
    const c: UpstreamCounts = { success: 0, failed: 0, skipped: 0, upstreamFailed: 0, done: 0, total: 0 };
    for (const up of task.upstream) {
      const group = this.byTask.get(up)!;
      const n = group.counts;
      c.success += n.success;
      c.failed += n.failed;
      c.skipped += n.skipped;
      c.upstreamFailed += n.upstream_failed;
      c.total += group.ids.length - n.removed;
    }
    c.done = c.success + c.failed + c.skipped + c.upstreamFailed;
    return evaluateTriggerRule(task.triggerRule, c);
  }

  /** Records what a finished branch or short-circuit decided (its XCom). */
  decided(taskId: string, result: unknown): void {
    const task = this.tasks.get(taskId)!;
    if (decides(task)) this.decisions.set(taskId, skippedBy(task, result, this.downstream));
  }

  /**
   * A task's result as a map or a downstream reads it: an unmapped task's XCom, or a mapped
   * task's collected results (its successful instances', in map-index order). null when it
   * has none (it did not succeed); 'unloaded' when it succeeded but a value is not in memory
   * (the run was loaded from the store): read it there.
   */
  resultOf(taskId: string): { value: unknown } | null | 'unloaded' {
    const task = this.tasks.get(taskId);
    if (task === undefined) return null;
    if (task.map === undefined) {
      if (this.tis.get(taskId)?.state !== 'success') return null;
      return this.xcoms.has(taskId) ? { value: this.xcoms.get(taskId) } : 'unloaded';
    }
    const values: unknown[] = [];
    for (const ti of this.instances(taskId)) {
      if (ti.state !== 'success') continue;
      const id = tiIdOf(ti);
      if (!this.xcoms.has(id)) return 'unloaded';
      values.push(this.xcoms.get(id));
    }
    return { value: values };
  }

  /** A run ends when every task instance has finished: failed if an instance of a leaf task failed. */
  outcome(): 'success' | 'failed' | null {
    if (this.unfinished > 0) return null;
    if (this.timedOut) return 'failed';
    for (const [taskId, group] of this.byTask) {
      if ((this.downstream.get(taskId)?.length ?? 0) === 0 && group.counts.failed + group.counts.upstream_failed > 0) return 'failed';
    }
    return 'success';
  }
}

export function runKey(dagId: string, runId: string): string {
  return `${dagId}\u0000${runId}`;
}

/** The task-instance rows a new run starts with. */
export function initialTaskInstances(dagId: string, runId: string, tasks: readonly SerializedTask[]): TiRow[] {
  return tasks.map((t) => ({
    dagId, runId, taskId: t.taskId, mapIndex: UNMAPPED, state: 'none', tryNumber: 0, maxTries: t.retries + 1,
    pool: t.pool, poolSlots: t.poolSlots, priorityWeight: t.priorityWeight, isolation: t.isolation,
    queuedAt: null, startedAt: null, endedAt: null, durationMs: null, pid: null, exitCode: null, signal: null,
    error: null, peakRssBytes: null, cpuMs: null, lastHeartbeatAt: null, queuedBy: null, nextRetryAt: null, firstPokeAt: null,
  }));
}

export type RetryOptions = Pick<ResolvedTaskOptions, 'retryDelayMs' | 'retryExponentialBackoff' | 'maxRetryDelayMs'>;
