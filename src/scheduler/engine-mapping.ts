/**
 * The run engine's side of dynamic task mapping: applying an expansion plan (expansion.ts) to
 * a run in memory and to the pending batch, reading from the store the sources' results a
 * run loaded after a restart does not hold, and each instance's item at dispatch.
 */
import type { TiState } from '../dag/types.js';
import type { Store, TiRow } from '../store/types.js';
import { planExpansion } from './expansion.js';
import type { PendingWrites } from './pending-writes.js';
import { tiIdOf, type RunState } from './run-state.js';
import { loadSourceResults } from './task-results.js';

/** What the mapping needs of its engine. */
export interface MappingHost {
  readonly store: Store;
  now(): number;
  /** The batch the next flush writes. */
  pending(): PendingWrites;
  setTi(run: RunState, next: TiRow, expectStates: readonly TiState[]): void;
  /** Ends every unstarted instance of a task without running it, then decides what follows. */
  settle(run: RunState, taskId: string, state: 'skipped' | 'upstream_failed' | 'failed', error: string | null): void;
  ready(run: RunState, tiId: string, priorityWeight: number): void;
  checkRunDone(run: RunState): void;
  /** The sources' results are in memory now: decide the task again (if the run is still held). */
  decideAgain(run: RunState, taskId: string): void;
  /** A read that waits out a database outage. */
  read<T>(read: () => Promise<T>): Promise<T>;
  onError(err: unknown): void;
}

export class EngineMapping {
  /** Mapped tasks waiting for their sources' results to be read from the store (`runKey\0taskId`). */
  private readonly loadingSources = new Set<string>();

  constructor(private readonly host: MappingHost) {}

  /**
   * Expands a mapped task whose trigger rule lets it run (see expansion.ts). Returns true when
   * its instances in state none are to be scheduled now, false when it settled the task or
   * waits for its sources' results to be read.
   */
  expand(run: RunState, taskId: string): boolean {
    const plan = planExpansion(run, taskId);
    if (plan.kind === 'load') {
      this.loadSources(run, taskId, plan.sources);
      return false;
    }
    if (plan.kind === 'settle') {
      this.host.settle(run, taskId, plan.state, plan.error);
      return false;
    }
    run.mapItems.set(taskId, plan.items);
    const now = this.host.now();
    for (const ti of plan.removed) this.host.setTi(run, { ...ti, state: 'removed', endedAt: now, durationMs: 0 }, ['none']);
    if (plan.placeholder !== null || plan.rows.length > 0) {
      let placeholder = null;
      if (plan.placeholder !== null) {
        const id = tiIdOf(plan.placeholder);
        // A change to the placeholder still pending is not written: the expansion deletes it, expecting what the database holds.
        const expect = this.host.pending().takeTi(run, id);
        placeholder = { expectStates: expect?.states ?? [plan.placeholder.state] };
        run.remove(id);
      }
      for (const row of plan.rows) run.add(row);
      this.host.pending().expansions.push({ run, expansion: { dagId: run.run.dagId, runId: run.run.runId, taskId, placeholder, rows: plan.rows } });
      const weight = run.tasks.get(taskId)!.priorityWeight;
      for (const row of plan.rows) this.host.ready(run, tiIdOf(row), weight);
    }
    if (plan.removed.length > 0) this.host.checkRunDone(run);
    return true;
  }

  /** Reads from the store the results a mapped task's expansion needs, then decides the task again. */
  private loadSources(run: RunState, taskId: string, sources: readonly string[]): void {
    const key = `${run.key}\u0000${taskId}`;
    if (this.loadingSources.has(key)) return;
    this.loadingSources.add(key);
    void this.host.read(() => loadSourceResults(this.host.store, run, sources))
      .then(() => {
        this.loadingSources.delete(key);
        this.host.decideAgain(run, taskId);
      })
      .catch((err: unknown) => {
        this.loadingSources.delete(key);
        this.host.onError(err);
      });
  }

  /** A mapped task's items (ctx.item of each instance), computed again after a restart; undefined while its sources are read. */
  itemsOf(run: RunState, taskId: string): unknown[] | undefined {
    const known = run.mapItems.get(taskId);
    if (known !== undefined) return known;
    const plan = planExpansion(run, taskId);
    if (plan.kind === 'load') this.loadSources(run, taskId, plan.sources);
    if (plan.kind !== 'expand') return undefined;
    run.mapItems.set(taskId, plan.items);
    return plan.items;
  }
}
