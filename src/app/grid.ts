/**
 * The grid of a DAG: a page of runs (newest logical date first) x its tasks, read in a fixed
 * number of statements whatever the page size (Store.gridRuns), never one request per run. A
 * mapped task's instances in a run become one cell summing them up by state, so a
 * 10,000-instance map is one cell per run, not 10,000; the store counts them (GridPageRead),
 * so they never come here one by one either.
 */
import { TI_STATES, type TiState } from '../dag/types.js';
import type { GridMappedCount, GridTi, RunCursor, RunRow, Store } from '../store/types.js';
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
  const read = await store.gridRuns(dagId, options.limit + 1, options.before);
  const page = read.runs.slice(0, options.limit);
  let { tis, mapped } = read;
  if (read.runs.length > options.limit) {
    const kept = new Set(page.map((r) => r.runId));
    tis = tis.filter((t) => kept.has(t.runId));
    mapped = mapped.filter((m) => kept.has(m.runId));
  }
  const cells = gridCells(tis, mapped);
  const tasks = dag.serialized.tasks.map((t) => t.taskId);
  const known = new Set(tasks);
  for (const c of cells) {
    if (!known.has(c.taskId)) {
      known.add(c.taskId);
      tasks.push(c.taskId);
    }
  }
  const last = page[page.length - 1];
  return { dagId, tasks, runs: page, cells, next: read.runs.length > options.limit && last ? { logicalDate: last.logicalDate, runId: last.runId } : null };
}

type MappedCell = Extract<GridCell, { mapped: true }>;

/**
 * Task instances as cells: one per unmapped instance, one per (run, mapped task) summing its
 * instances up. `tis` are instances one by one (a mapped task's may be among them: each counts
 * once), `mapped` a mapped task's instances already counted by state (GridMappedCount, what
 * the store reads). A cell comes where its first instance or count does: both lists in
 * (run id, task id) order (GridPageRead's) give the cells in that order.
 */
export function gridCells(tis: readonly GridTi[], mapped: readonly GridMappedCount[] = []): GridCell[] {
  const key = (t: { runId: string; taskId: string }) => `${t.runId}\0${t.taskId}`;
  const cells: GridCell[] = [];
  const mappedCells = new Map<string, MappedCell>();
  const expanded = new Set<string>();
  for (const m of mapped) expanded.add(key(m));
  for (const t of tis) if (t.mapIndex >= 0) expanded.add(key(t));
  const add = (runId: string, taskId: string, state: TiState, count: number, tryNumber: number) => {
    const k = `${runId}\0${taskId}`;
    let cell = mappedCells.get(k);
    if (cell === undefined) {
      cell = { runId, taskId, mapped: true, count: 0, states: {}, state: 'none', tryNumber: 0 };
      mappedCells.set(k, cell);
      cells.push(cell);
    }
    cell.count += count;
    cell.states[state] = (cell.states[state] ?? 0) + count;
    cell.tryNumber = Math.max(cell.tryNumber, tryNumber);
  };
  let next = 0;
  for (const t of tis) {
    // The counts of the tasks before this instance's, in (run id, task id) order.
    for (let m = mapped[next]; m !== undefined && (m.runId < t.runId || (m.runId === t.runId && m.taskId < t.taskId)); m = mapped[++next]) {
      add(m.runId, m.taskId, m.state, m.count, m.maxTryNumber);
    }
    if (t.mapIndex >= 0) add(t.runId, t.taskId, t.state, 1, t.tryNumber);
    // A placeholder left beside its instances (it is deleted as they are made) is not one of them.
    else if (!expanded.has(key(t))) cells.push({ runId: t.runId, taskId: t.taskId, mapped: false, state: t.state, tryNumber: t.tryNumber });
  }
  for (const m of mapped.slice(next)) add(m.runId, m.taskId, m.state, m.count, m.maxTryNumber);
  for (const cell of mappedCells.values()) {
    cell.state = aggregateState(cell.states);
    cell.states = inStateOrder(cell.states);
  }
  return cells;
}

/** The same counts, keyed in the state machine's order (as the instance list's counts are), however they were summed up. */
function inStateOrder(counts: StateCounts): StateCounts {
  const out: StateCounts = {};
  for (const s of TI_STATES) if (counts[s] !== undefined) out[s] = counts[s];
  return out;
}
