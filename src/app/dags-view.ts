/**
 * What the web UI and the HTTP API read about DAGs, and pause/unpause (shared with `kiln dags
 * pause|unpause`). Reads only the store: the scheduler records the DAG folder there.
 */
import type { KilnConfig } from '../config/load.js';
import { KilnError } from '../errors.js';
import { dueAt, effectiveCursor, NO_MORE_RUNS } from '../scheduler/schedule.js';
import type { DagRow, ImportErrorRow, RunRow, Store } from '../store/types.js';
import { storedDag } from './scheduler-dags.js';

export interface DagOverview {
  dag: DagRow;
  /** The latest runs, newest first (by the time they were queued). */
  lastRuns: RunRow[];
  /** The logical date of the next scheduled run and when it is due, or null (manual only, or no more runs). */
  nextRun: { logicalDate: number; dueAt: number } | null;
}

/** Every DAG in the store with its last `lastRuns` runs and its next scheduled run; import errors beside. */
export async function listDagOverviews(store: Store, options: { lastRuns?: number; now?: number } = {}): Promise<{ dags: DagOverview[]; importErrors: ImportErrorRow[] }> {
  const now = options.now ?? Date.now();
  const dags = await store.listDags();
  const overviews = await Promise.all(
    dags.map(async (dag) => ({ dag, lastRuns: await store.listRuns({ dagId: dag.dagId, limit: options.lastRuns ?? 10 }), nextRun: nextRunOf(dag, now) })),
  );
  return { dags: overviews, importErrors: await store.listImportErrors() };
}

export async function getDagOrThrow(store: Store, dagId: string): Promise<DagRow> {
  const dag = await store.getDag(dagId);
  if (!dag) throw new KilnError('DAG_NOT_FOUND', `no DAG '${dagId}' in the database (is its file in the DAG folder, and has a scheduler or \`kiln dags list\` read it?)`);
  return dag;
}

export function nextRunOf(dag: DagRow, now: number): DagOverview['nextRun'] {
  const spec = dag.serialized;
  if (spec.schedule === null) return null;
  const cursor = effectiveCursor(spec, dag.nextRunAt, now);
  if (cursor === null || cursor >= NO_MORE_RUNS) return null;
  const due = dueAt(spec, cursor);
  return due >= NO_MORE_RUNS ? null : { logicalDate: cursor, dueAt: due };
}

/** `kiln dags pause|unpause` and the API's: a DAG not recorded yet is read from the DAG folder first (see storedDag). */
export async function setDagPaused(store: Store, config: Pick<KilnConfig, 'dagsFolder' | 'parseTimeoutMs' | 'homeDir'>, dagId: string, paused: boolean): Promise<DagRow> {
  await storedDag(store, config, dagId);
  await store.setDagPaused(dagId, paused);
  return (await store.getDag(dagId))!;
}
