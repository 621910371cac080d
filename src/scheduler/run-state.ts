/**
 * In-memory bookkeeping of one DAG run: its task instances, the downstream map and how
 * many task instances are unfinished. Pure: no I/O. The engine asks it what became ready
 * when a task instance finishes, so readiness is decided per event, for the downstream
 * tasks of what changed only, never by scanning every task instance of every run.
 */
import { decides, skippedBy } from '../dag/decisions.js';
import { downstreamMap } from '../dag/graph.js';
import { evaluateTriggerRule, upstreamCounts } from '../dag/trigger-rules.js';
import { FINISHED_TI_STATES, type ResolvedTaskOptions, type SerializedDag, type TiState } from '../dag/types.js';
import type { DataInterval, RunRow, TiRow } from '../store/types.js';

export type SerializedTask = SerializedDag['tasks'][number];

const FINISHED = new Set<TiState>(FINISHED_TI_STATES);
export const isFinished = (state: TiState): boolean => FINISHED.has(state);
/** States in which a task instance holds an executor slot (or is about to). */
export const isActive = (state: TiState): boolean => state === 'queued' || state === 'running';

export class RunState {
  readonly tasks: Map<string, SerializedTask>;
  readonly downstream: Map<string, string[]>;
  readonly tis = new Map<string, TiRow>();
  /** XCom values produced while this run was in memory (others are read from the store). */
  readonly xcoms = new Map<string, unknown>();
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

  constructor(
    public run: RunRow,
    readonly dag: SerializedDag,
    readonly dagFile: string,
    tis: Iterable<TiRow>,
  ) {
    this.tasks = new Map(dag.tasks.map((t) => [t.taskId, t]));
    this.downstream = downstreamMap(dag.tasks);
    for (const ti of tis) {
      this.tis.set(ti.taskId, ti);
      if (!isFinished(ti.state)) this.unfinished++;
      if (isActive(ti.state)) this.active++;
    }
  }

  get key(): string {
    return runKey(this.run.dagId, this.run.runId);
  }

  /** Replaces a task instance's row, keeping the counters right. */
  replace(next: TiRow): void {
    const prev = this.tis.get(next.taskId)!;
    this.unfinished += (isFinished(prev.state) ? 1 : 0) - (isFinished(next.state) ? 1 : 0);
    this.active += (isActive(next.state) ? 1 : 0) - (isActive(prev.state) ? 1 : 0);
    this.tis.set(next.taskId, next);
  }

  /**
   * What the trigger rule says for a task that has not started: run, wait, or finish it
   * as skipped / upstream_failed without running.
   */
  decide(taskId: string): 'run' | 'wait' | 'skipped' | 'upstream_failed' {
    const task = this.tasks.get(taskId)!;
    for (const [decider, skips] of this.decisions) {
      if (skips.has(taskId) && this.tis.get(decider)?.state === 'success') return 'skipped';
    }
    if (task.upstream.length === 0) return 'run';
    return evaluateTriggerRule(task.triggerRule, upstreamCounts(task.upstream.map((u) => this.tis.get(u)!.state)));
  }

  /** Records what a finished branch or short-circuit decided (its XCom). */
  decided(taskId: string, result: unknown): void {
    const task = this.tasks.get(taskId)!;
    if (decides(task)) this.decisions.set(taskId, skippedBy(task, result, this.downstream));
  }

  /** A run ends when every task instance has finished: failed if any leaf failed. */
  outcome(): 'success' | 'failed' | null {
    if (this.unfinished > 0) return null;
    if (this.timedOut) return 'failed';
    for (const [taskId, ti] of this.tis) {
      if ((this.downstream.get(taskId)?.length ?? 0) === 0 && (ti.state === 'failed' || ti.state === 'upstream_failed')) return 'failed';
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
    dagId, runId, taskId: t.taskId, state: 'none', tryNumber: 0, maxTries: t.retries + 1,
    pool: t.pool, poolSlots: t.poolSlots, priorityWeight: t.priorityWeight, isolation: t.isolation,
    queuedAt: null, startedAt: null, endedAt: null, durationMs: null, pid: null, exitCode: null, signal: null,
    error: null, peakRssBytes: null, cpuMs: null, lastHeartbeatAt: null, queuedBy: null, nextRetryAt: null, firstPokeAt: null,
  }));
}

export type RetryOptions = Pick<ResolvedTaskOptions, 'retryDelayMs' | 'retryExponentialBackoff' | 'maxRetryDelayMs'>;
