/**
 * The grid of a DAG: a page of runs (newest logical date first) x its tasks, read in two
 * statements whatever the page size (Store.gridRuns), never one request per run.
 */
import type { GridTi, RunCursor, RunRow, Store } from '../store/types.js';
import { getDagOrThrow } from './dags-view.js';

export interface GridPage {
  dagId: string;
  /** The DAG's tasks in definition order, then any task only older runs have. */
  tasks: string[];
  runs: RunRow[];
  tis: GridTi[];
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
  return { dagId, tasks, runs: page, tis: pageTis, next: runs.length > options.limit && last ? { logicalDate: last.logicalDate, runId: last.runId } : null };
}
