import type { TiState } from '../dag/types.js';
import type { TaskWork } from '../protocol/messages.js';
import type { CallbackRow, CallbackWrite, RunWrite, TiExpansion, TiRow, TiWrite, WriteBatch, XcomWrite } from '../store/types.js';
import { tiIdOf, type RunState } from './run-state.js';

/**
 * What the run engine will persist at its next flush, in one transaction, and what it
 * will do once that transaction has committed (submit work, announce finished runs).
 */
export class PendingWrites {
  /** Mapped tasks expanded (written before `tis`, which may queue their new instances). */
  readonly expansions: Array<{ expansion: TiExpansion; run: RunState }> = [];
  /**
   * Keyed by run and task instance: several changes to one task instance collapse into one write.
   * A lazy write (queued -> running) need not be committed by itself: it goes out with the
   * next urgent write, or when the engine's backstop timer fires.
   */
  readonly tis = new Map<string, { write: TiWrite; run: RunState; lazy: boolean }>();
  private urgentTis = 0;
  readonly runs: Array<{ write: RunWrite; run: RunState }> = [];
  readonly xcoms: XcomWrite[] = [];
  readonly heartbeats: Array<{ dagId: string; runId: string; taskId: string; mapIndex: number; tryNumber: number }> = [];
  heartbeatAt = 0;
  /** Submitted to the executor only after the queued rows are committed. */
  readonly works: Array<{ work: TaskWork; run: RunState }> = [];
  readonly finishedRuns: RunState[] = [];
  /** Callbacks owed by a change in this batch (see callbacks.ts), each tied to its ti or run write. */
  readonly callbacks: Array<{ row: CallbackRow; run: RunState; tiKey?: string; runIndex?: number }> = [];
  /** Ids of callbacks that have run: their rows are deleted. */
  readonly callbacksDone: string[] = [];

  /** A callback owed if the pending write of this task instance applies. */
  callbackOnTi(run: RunState, tiId: string, row: CallbackRow): void {
    this.callbacks.push({ row, run, tiKey: `${run.key}\u0000${tiId}` });
  }

  /** A callback owed if the run write about to be pushed (the next index of `runs`) applies. */
  callbackOnNextRunWrite(run: RunState, row: CallbackRow): void {
    this.callbacks.push({ row, run, runIndex: this.runs.length });
  }

  /**
   * Records a new row for a task instance. The first expectation (what the database holds
   * now) is kept with the last row, so a collapsed write is still a correct compare-and-set.
   */
  setTi(run: RunState, prev: TiRow, next: TiRow, expectStates: readonly TiState[], lazy = false): void {
    const key = `${run.key}\u0000${tiIdOf(next)}`;
    const existing = this.tis.get(key);
    if (existing) {
      existing.write.row = next;
      if (next.state !== 'queued') delete existing.write.ifPoolFull;
      if (existing.lazy && !lazy) {
        existing.lazy = false;
        this.urgentTis++;
      }
      return;
    }
    this.tis.set(key, { run, lazy, write: { row: next, expect: { tryNumber: prev.tryNumber, states: expectStates } } });
    if (!lazy) this.urgentTis++;
  }

  /**
   * Records a write that queues a try, to apply only if its pool still has room when the
   * batch is written; else `ifPoolFull` (the row before queueing) is written (see TiWrite).
   */
  setQueued(run: RunState, prev: TiRow, next: TiRow, ifPoolFull: TiRow): void {
    this.setTi(run, prev, next, ['scheduled']);
    this.tis.get(`${run.key}\u0000${tiIdOf(next)}`)!.write.ifPoolFull = ifPoolFull;
  }

  hasTi(run: RunState, tiId: string): boolean {
    return this.tis.has(`${run.key}\u0000${tiId}`);
  }

  /** Takes back the pending write of a task instance (a placeholder an expansion deletes): its expectation, or undefined. */
  takeTi(run: RunState, tiId: string): TiWrite['expect'] | undefined {
    const key = `${run.key}\u0000${tiId}`;
    const entry = this.tis.get(key);
    if (entry === undefined) return undefined;
    this.tis.delete(key);
    if (!entry.lazy) this.urgentTis--;
    return entry.write.expect;
  }

  heartbeat(ti: TiRow, at: number): void {
    this.heartbeats.push({ dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, tryNumber: ti.tryNumber });
    this.heartbeatAt = at;
  }

  /** The database part, or null when there is nothing to write. */
  toWriteBatch(): WriteBatch | null {
    if (this.expansions.length + this.tis.size + this.runs.length + this.xcoms.length + this.heartbeats.length + this.callbacks.length + this.callbacksDone.length === 0) return null;
    const batch: WriteBatch = {
      ...(this.expansions.length > 0 ? { expansions: this.expansions.map((e) => e.expansion) } : {}),
      tis: [...this.tis.values()].map((e) => e.write),
      runs: this.runs.map((r) => r.write),
      xcoms: this.xcoms,
      ...(this.heartbeats.length > 0 ? { heartbeats: { at: this.heartbeatAt, keys: this.heartbeats } } : {}),
    };
    if (this.callbacks.length > 0) batch.callbacks = this.callbackWrites();
    if (this.callbacksDone.length > 0) batch.callbacksDone = this.callbacksDone;
    return batch;
  }

  /** The callbacks with the index of the write each depends on. */
  private callbackWrites(): CallbackWrite[] {
    const tiIndex = new Map<string, number>();
    let i = 0;
    for (const key of this.tis.keys()) tiIndex.set(key, i++);
    return this.callbacks.map((c) => (c.tiKey !== undefined ? { row: c.row, ifTi: tiIndex.get(c.tiKey)! } : { row: c.row, ifRun: c.runIndex! }));
  }

  /** Holds only lazy writes (or nothing): no reason to open a transaction now. */
  isLazyOnly(): boolean {
    return this.urgentTis === 0 && this.expansions.length === 0 && this.callbacks.length === 0 && this.callbacksDone.length === 0 && this.runs.length === 0 && this.xcoms.length === 0 && this.heartbeats.length === 0 && this.works.length === 0 && this.finishedRuns.length === 0;
  }

  isEmpty(): boolean {
    return this.tis.size === 0 && this.expansions.length === 0 && this.callbacks.length === 0 && this.callbacksDone.length === 0 && this.runs.length === 0 && this.xcoms.length === 0 && this.heartbeats.length === 0 && this.works.length === 0 && this.finishedRuns.length === 0;
  }
}
