/**
 * The run engine's side of callbacks (see callbacks.ts): which changes owe one, running the
 * owed ones in the executor once their rows are committed, and deleting each row once its
 * callback has run. The engine calls in at five points: a try ends (oweForTry), a run ends
 * (oweForRun), dispatch (take), an executor event (finished), and after each commit
 * (afterCommit).
 */
import type { Isolation } from '../dag/types.js';
import type { ExecutorEvent } from '../executor/types.js';
import { failureReason } from '../protocol/failure-reason.js';
import type { TaskWork } from '../protocol/messages.js';
import type { CallbackRow, TiRow, WriteBatch } from '../store/types.js';
import { CallbackQueue, callbackLogFile, callbackWork, runCallbackRow, taskCallbackFor, taskCallbackRow, type CallbackRunContext } from './callbacks.js';
import type { PendingWrites } from './pending-writes.js';
import { tiIdOf, type RunState } from './run-state.js';

/** How long a callback run here is remembered after its row was deleted (see holds()). */
const RECENTLY_DELETED_MS = 60_000;

type Finished = Extract<ExecutorEvent, { type: 'finished' }>;

export interface EngineCallbacksOptions {
  /** The owner written on every callback row this engine owes: the scheduler's (or `dags test`'s) id. */
  owner: string;
  defaultIsolation: Isolation;
  logsFolder: string;
  sourcesFolder?: string;
  now: () => number;
  /** A callback ran and threw (or its worker failed): logged, it changes no state. */
  onFailed?: (row: CallbackRow, error: string, logFile: string | null) => void;
}

export class EngineCallbacks {
  private readonly queue = new CallbackQueue();
  /** Callbacks run here whose rows were deleted lately: a claim read before the delete must not run them again. */
  private readonly deletedAt = new Map<string, number>();

  constructor(private readonly options: EngineCallbacksOptions) {}

  /** Callbacks waiting, running, or run and not yet deleted. */
  get count(): number {
    return this.queue.size;
  }

  get waitingCount(): number {
    return this.queue.waitingCount;
  }

  /** True if the callback is held here (or ran here a moment ago). */
  holds(id: string): boolean {
    return this.queue.has(id) || this.deletedAt.has(id);
  }

  /** A try ended with `next`: the callback its task has for that, owed if the write applies. */
  oweForTry(pending: PendingWrites, run: RunState, prev: TiRow, next: TiRow, end: Omit<Finished, 'type' | 'key'>): void {
    const kind = taskCallbackFor(run.tasks.get(next.taskId)!, prev, next, end.outcome === 'skipped');
    if (kind === null) return;
    const failed = next.state === 'failed' || next.state === 'up_for_retry';
    const reason = failed ? failureReason({ error: end.error, exitCode: end.exitCode, signal: end.signal }) : null;
    pending.callbackOnTi(run, tiIdOf(next), taskCallbackRow(next, kind, reason, this.options.owner, end.at));
  }

  /** The run ended (its write is the next one pushed): the DAG's callback for that, if it has one. */
  oweForRun(pending: PendingWrites, run: RunState): void {
    const { state, failureReason: reason = null } = run.run;
    const kind = state === 'success' ? 'success' : 'failure';
    if (!run.dag.callbacks?.includes(kind)) return;
    const error = reason === 'timed_out' ? `the run passed its dagrunTimeout (${run.dag.dagrunTimeoutMs} ms)` : reason === 'task_failed' ? 'a task failed' : null;
    pending.callbackOnNextRunWrite(run, runCallbackRow(run.run, kind, reason as 'timed_out' | 'task_failed' | null, error, this.options.owner, run.run.endedAt ?? this.options.now()));
  }

  /**
   * Callbacks owed by a dead owner (claimed by the scheduler), or this engine's own found
   * again: each id at most once here. `context` null: the run is gone, the row is dropped.
   */
  runOwed(pending: PendingWrites, owed: ReadonlyArray<{ row: CallbackRow; context: CallbackRunContext | null }>): void {
    for (const { row, context } of owed) {
      if (this.holds(row.id)) continue;
      if (context === null) pending.callbacksDone.push(row.id);
      else this.queue.add(row, this.work(context, row));
    }
  }

  /** Up to `n` callbacks to submit now (their rows are committed). */
  take(n: number): TaskWork[] {
    return this.queue.take(n);
  }

  /** An executor 'finished' event: true if it was a callback's (its row goes in the next batch). */
  finished(pending: PendingWrites, event: Finished): boolean {
    const row = this.queue.finished(event.key);
    if (row === undefined) return false;
    pending.callbacksDone.push(row.id);
    if (event.outcome === 'failed') {
      const error = event.error ? (event.error.code ? `${event.error.code}: ${event.error.message}` : event.error.message) : 'failed';
      this.options.onFailed?.(row, error, callbackLogFile(this.options.logsFolder, row));
    }
    return true;
  }

  /** After a commit: callbacks whose change applied are queued to run; deleted rows are forgotten. Returns true if any was queued. */
  afterCommit(p: PendingWrites, batch: WriteBatch, tis: readonly boolean[], runs: readonly boolean[]): boolean {
    const now = this.options.now();
    if (p.callbacksDone.length > 0) {
      this.queue.deleted(p.callbacksDone);
      for (const id of p.callbacksDone) this.deletedAt.set(id, now);
      // Oldest first (insertion order): forget those a late claim can no longer bring back.
      for (const [id, at] of this.deletedAt) {
        if (at > now - RECENTLY_DELETED_MS) break;
        this.deletedAt.delete(id);
      }
    }
    let queued = false;
    batch.callbacks?.forEach((c, i) => {
      const applied = c.ifTi !== undefined ? tis[c.ifTi] : c.ifRun !== undefined ? runs[c.ifRun] : true;
      const { run } = p.callbacks[i]!;
      if (applied && !run.stale && this.queue.add(c.row, this.work(run, c.row))) queued = true;
    });
    return queued;
  }

  whenDone(): Promise<void> {
    return this.queue.whenDone();
  }

  /** Shutdown: forget everything; the rows stay owed, for the next owner. */
  clear(): void {
    this.queue.clear();
  }

  private work(context: CallbackRunContext, row: CallbackRow): TaskWork {
    return callbackWork(context, row, this.options.defaultIsolation, this.options.logsFolder, this.options.sourcesFolder);
  }
}
