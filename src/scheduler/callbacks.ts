/**
 * Callbacks that always fire (task onSuccess/onFailure/onRetry/onSkipped, DAG
 * onSuccess/onFailure), at least once and never silently lost:
 *
 *   1. the state change that owes a callback also inserts a callback_request row, in the same
 *      transaction (WriteBatch.callbacks, inserted only if that change applied), owned by the
 *      scheduler (or `dags test`) that made the change;
 *   2. once committed, the owner runs the callback in a worker of the task's isolation, like a
 *      try (never in the scheduler's thread), with its own log file;
 *   3. when it has run (a throw is logged and changes no state), the row is deleted;
 *   4. an owner that dies leaves its rows behind: a live scheduler claims them
 *      (Store.claimCallbacks, the same dead-owner rule as runs) and runs them.
 *
 * A callback interrupted by a crash runs again: at least once, as the issue asks. The ids are
 * unique per occasion (a try number, or a run's end time), so a retried write inserts nothing
 * twice.
 */
import { join } from 'node:path';
import type { CallbackKind, FailureReason, Isolation, SerializedDag } from '../dag/types.js';
import type { TaskWork } from '../protocol/messages.js';
import type { CallbackRow, RunRow, TiRow } from '../store/types.js';
import { sourceSnapshotPath } from '../../workers/dag-sources.js';
import { tiIdOf } from './run-state.js';
import { runLogFolder, taskLogFile } from './task-work.js';

/** How long one callback may run before it is stopped (like a try's timeout). */
export const CALLBACK_TIMEOUT_MS = 5 * 60_000;

/** What a callback needs of its run to be built into work. */
export interface CallbackRunContext {
  run: RunRow;
  dag: SerializedDag;
  dagFile: string;
}

/** The callback a task instance's new state owes, if the task has one. */
export function taskCallbackFor(task: { callbacks?: CallbackKind[] }, prev: TiRow, next: TiRow, selfSkipped: boolean): CallbackKind | null {
  const has = (k: CallbackKind) => task.callbacks?.includes(k) === true;
  if (next.state === prev.state && next.tryNumber === prev.tryNumber) return null;
  switch (next.state) {
    case 'success':
      return has('success') ? 'success' : null;
    case 'failed':
      return has('failure') ? 'failure' : null;
    case 'up_for_retry':
      return has('retry') ? 'retry' : null;
    case 'skipped':
      return selfSkipped && has('skipped') ? 'skipped' : null;
    default:
      return null;
  }
}

export function taskCallbackRow(ti: TiRow, kind: CallbackKind, reason: FailureReason | null, owner: string, now: number): CallbackRow {
  return {
    id: `${ti.dagId}/${ti.runId}/${tiIdOf(ti)}/${ti.tryNumber}/${kind}`,
    dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, tryNumber: ti.tryNumber, kind,
    state: ti.state, reason, error: ti.error, exitCode: ti.exitCode, signal: ti.signal, createdAt: now, owner,
  };
}

export function runCallbackRow(run: RunRow, kind: 'success' | 'failure', reason: FailureReason | null, error: string | null, owner: string, now: number): CallbackRow {
  return {
    // The end time keeps a second failure of a cleared run from colliding with the first.
    id: `${run.dagId}/${run.runId}//${kind}@${run.endedAt ?? now}`,
    dagId: run.dagId, runId: run.runId, taskId: null, mapIndex: null, tryNumber: null, kind,
    state: run.state, reason, error, exitCode: null, signal: null, createdAt: now, owner,
  };
}

/** `<logs>/<dag>/<run>/<task>/<try>.<kind>-callback.log`, or `<logs>/<dag>/<run>/@dag/<kind>-callback.log`. */
export function callbackLogFile(logsFolder: string, row: Pick<CallbackRow, 'dagId' | 'runId' | 'taskId' | 'mapIndex' | 'tryNumber' | 'kind'>): string {
  // '@' is not allowed in a task id: the DAG's folder never collides with a task's.
  if (row.taskId === null) return join(runLogFolder(logsFolder, row.dagId, row.runId), '@dag', `${row.kind}-callback.log`);
  // Beside the try's own log: `<try>.log` -> `<try>.<kind>-callback.log`.
  return taskLogFile(logsFolder, row.dagId, row.runId, row.taskId, row.tryNumber ?? 0, row.mapIndex ?? -1).replace(/\.log$/, `.${row.kind}-callback.log`);
}

/** "callback onFailure of task 'load' (run r, DAG d, try 2)" for logs. */
export function describeCallback(row: Pick<CallbackRow, 'dagId' | 'runId' | 'taskId' | 'tryNumber' | 'kind'>): string {
  const hook = `on${row.kind[0]!.toUpperCase()}${row.kind.slice(1)}`;
  return row.taskId === null
    ? `callback ${hook} of DAG ${row.dagId} (run ${row.runId})`
    : `callback ${hook} of task ${row.taskId} (run ${row.runId}, DAG ${row.dagId}, try ${row.tryNumber})`;
}

/** The line logged when a callback fails: which one, why, and where its log is. */
export function describeCallbackFailure(row: Parameters<typeof describeCallback>[0], error: string, logFile: string | null): string {
  return `${describeCallback(row)} failed: ${error} (log: ${logFile})`;
}

export function callbackKey(row: Pick<CallbackRow, 'id'>): string {
  return `callback:${row.id}`;
}

/** The work that runs one callback. */
export function callbackWork(ctx: CallbackRunContext, row: CallbackRow, defaultIsolation: Isolation, logsFolder: string, sourcesFolder?: string): TaskWork {
  const task = row.taskId === null ? undefined : ctx.dag.tasks.find((t) => t.taskId === row.taskId);
  const r = ctx.run;
  return {
    key: callbackKey(row), dagId: r.dagId, runId: r.runId, taskId: row.taskId ?? '', mapIndex: row.mapIndex ?? -1,
    tryNumber: row.tryNumber ?? 0, maxTries: task ? task.retries + 1 : 0,
    dagFile: ctx.dagFile, dagVersion: r.dagVersion,
    dagSourceFile: sourcesFolder === undefined ? null : sourceSnapshotPath(sourcesFolder, ctx.dagFile, r.dagVersion),
    params: { ...ctx.dag.params, ...r.params }, isolation: task?.isolation ?? defaultIsolation,
    runType: r.runType, logicalDate: r.logicalDate, dataIntervalStart: r.dataIntervalStart, dataIntervalEnd: r.dataIntervalEnd,
    prevDataIntervalStartSuccess: null, prevDataIntervalEndSuccess: null,
    timeoutMs: CALLBACK_TIMEOUT_MS, heartbeatTimeoutMs: null, env: task?.env ?? [], logFile: callbackLogFile(logsFolder, row),
    maxTaskMemoryBytes: task?.maxTaskMemoryBytes ?? null,
    // A task's callback runs where the task ran; a DAG's on the default queue.
    queue: task?.queue ?? 'default',
    callback: { kind: row.kind, scope: row.taskId === null ? 'dag' : 'task', state: row.state, reason: row.reason, error: row.error, exitCode: row.exitCode, signal: row.signal },
  };
}

/**
 * The callbacks an engine owes: waiting for a slot, running, or run and waiting for their
 * row's delete to commit. Each id is here once, so a callback claimed again (the owner's own
 * rows come back from every claimCallbacks) is not run twice by one engine.
 */
export class CallbackQueue {
  private readonly waiting: TaskWork[] = [];
  private readonly running = new Map<string, CallbackRow>();
  /** Every id held: waiting, running, or done and not yet deleted. */
  private readonly known = new Set<string>();
  private readonly idleWaiters: Array<() => void> = [];

  /** False if the callback is already held here. */
  add(row: CallbackRow, work: TaskWork): boolean {
    if (this.known.has(row.id)) return false;
    this.known.add(row.id);
    this.waiting.push(work);
    this.running.set(work.key, row);
    return true;
  }

  /** Callbacks held: waiting, running, or run and not yet deleted. */
  get size(): number {
    return this.known.size;
  }

  has(id: string): boolean {
    return this.known.has(id);
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Up to `n` callbacks to submit now. */
  take(n: number): TaskWork[] {
    return this.waiting.splice(0, Math.max(0, n));
  }

  /** A callback's work ended: its row, or undefined if the key is not a callback of ours. */
  finished(key: string): CallbackRow | undefined {
    const row = this.running.get(key);
    if (row !== undefined) this.running.delete(key);
    return row;
  }

  /** The rows of these ids are deleted: forget them. */
  deleted(ids: readonly string[]): void {
    for (const id of ids) this.known.delete(id);
    if (this.known.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Resolves when every callback held has run and its row is deleted. */
  whenDone(): Promise<void> {
    if (this.known.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Gives up on everything (shutdown): the rows stay owed, for the next owner. */
  clear(): void {
    this.waiting.length = 0;
    this.running.clear();
    this.known.clear();
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
