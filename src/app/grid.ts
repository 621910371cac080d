/**
 * The grid of a DAG: a page of runs (newest logical date first) x its tasks, read in two
 * statements whatever the page size (Store.gridRuns), never one request per run. A mapped
 * task's instances in a run become one cell summing them up by state, so a 10,000-instance
 * map is one cell per run, not 10,000.
 */
import type { TiState } from '../dag/types.js';
import type { GridTi, RunCursor, RunRow, Store } from '../store/types.js';
import { getDagOrThrow } from './dags-view.js';
import { aggregateState, type StateCounts } from './instance-summary.js';

/** One cell: a task's instance in a run, or all of a mapped task's instances in it, summed up. */
export type GridCell =
  | { runId: string; taskId: string; mapped: false; state: TiState; tryNumber: number }
  | {
      runId: string;
      taskId: string;
      mapped: true;
      /** How many instances (removed ones included). */
      count: number;
      states: StateCounts;
      /** The state that stands for them all (instance-summary.ts aggregateState). */
      state: TiState;
      /** The highest try number among them. */
      tryNumber: number;
    };

export interface GridPage {
  dagId: string;
  /** The DAG's tasks in definition order, then any task only older runs have. */
  tasks: string[];
  runs: RunRow[];
  cells: GridCell[];
  /** The cursor of the next (older) page, or null when this page is the last. */
  next: RunCursor | null;
}

export async function dagGrid(store: Store, dagId: string, options: { limit: number; before?: RunCursor }): Promise<GridPage> {
  const dag = await getDagOrThrow(store, dagId);
  // One more than asked: whether an older page exists, without a count.
  const { runs, tis } = await store.gridRuns(dagId, options.limit + 1, options.before);
  const page = runs.slice(0, options.limit);
  const kept = new Set(page.map((r) => r.runId));
  const pageTis = runs.length > options.limit ? tis.filter((t) => kept.has(t.runId)) : tis;
  const tasks = dag.serialized.tasks.map((t) => t.taskId);
  const known = new Set(tasks);
  for (const t of pageTis) {
    if (!known.has(t.taskId)) {
      known.add(t.taskId);
      tasks.push(t.taskId);
    }
  }
  const last = page[page.length - 1];
  return { dagId, tasks, runs: page, cells: gridCells(pageTis), next: runs.length > options.limit && last ? { logicalDate: last.logicalDate, runId: last.runId } : null };
}

/** Task instances as cells: one per unmapped instance, one per (run, mapped task) summing its instances up. */
export function gridCells(tis: readonly GridTi[]): GridCell[] {
  const cells: GridCell[] = [];
  const mapped = new Map<string, Extract<GridCell, { mapped: true }>>();
  const expanded = new Set<string>();
  for (const t of tis) if (t.mapIndex >= 0) expanded.add(`${t.runId}\0${t.taskId}`);
  for (const t of tis) {
    const key = `${t.runId}\0${t.taskId}`;
    if (!expanded.has(key)) {
      cells.push({ runId: t.runId, taskId: t.taskId, mapped: false, state: t.state, tryNumber: t.tryNumber });
      continue;
    }
    // A placeholder left beside its instances (it is deleted as they are made) is not one of them.
    if (t.mapIndex < 0) continue;
    let cell = mapped.get(key);
    if (cell === undefined) {
      cell = { runId: t.runId, taskId: t.taskId, mapped: true, count: 0, states: {}, state: 'none', tryNumber: 0 };
      mapped.set(key, cell);
      cells.push(cell);
    }
    cell.count++;
    cell.states[t.state] = (cell.states[t.state] ?? 0) + 1;
    cell.tryNumber = Math.max(cell.tryNumber, t.tryNumber);
  }
  for (const cell of mapped.values()) cell.state = aggregateState(cell.states);
  return cells;
}
