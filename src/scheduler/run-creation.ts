/**
 * Creating runs: scheduled ones from each DAG's cursor, manual ones from `kiln dags trigger`.
 * A run is inserted with all its task instances, 'queued' and unclaimed; whichever scheduler
 * claims it drives it.
 *
 * Two schedulers never create the same scheduled run: its id is derived from its logical date
 * (the insert of a second one is a no-op), and the cursor only moves by compare-and-set
 * (store.advanceNextRunAt). The run is inserted before the cursor moves, so a crash in
 * between loses nothing: the next pass finds the run there and only moves the cursor.
 */
import { KilnError, UsageError } from '../errors.js';
import type { DagRow, DataInterval, RunRow, Store, TiRow } from '../store/types.js';
import { manualInterval, scheduledInterval } from './data-interval.js';
import { resolveRunParams } from './params-schema.js';
import { initialTaskInstances } from './run-state.js';
import { dueAt, followingCursor, NO_MORE_RUNS, planRuns, scheduledRunId } from './schedule.js';

/**
 * Creates the due scheduled runs of one DAG, at most as many as it has free active-run
 * slots (maxActiveRuns counts queued and running runs, as in Airflow). Returns when the DAG
 * next needs a look: the end of the next interval, or now when runs are due but blocked.
 */
export async function createDueRuns(store: Store, dag: DagRow, now: number): Promise<{ created: RunRow[]; nextCheckAt: number }> {
  const spec = dag.serialized;
  const created: RunRow[] = [];
  if (dag.isPaused || spec.schedule === null) return { created, nextCheckAt: NO_MORE_RUNS };
  const free = Math.max(0, spec.maxActiveRuns - (await store.countActiveRuns(dag.dagId)));
  const plan = planRuns(spec, dag.nextRunAt, now, free);
  if (plan.from !== dag.nextRunAt && !(await store.advanceNextRunAt(dag.dagId, dag.nextRunAt, plan.from))) {
    return { created, nextCheckAt: now }; // another scheduler moved it first: look again next tick
  }
  let cursor = plan.from;
  for (const logicalDate of plan.logicalDates) {
    const row = newRunRow(dag, scheduledRunId(logicalDate), 'scheduled', logicalDate, scheduledInterval(spec.schedule, logicalDate), scheduledParams(spec), now, null);
    if (await store.createRun(row, initialTaskInstances(dag.dagId, row.runId, spec.tasks))) created.push(row);
    const next = followingCursor(spec, logicalDate);
    if (!(await store.advanceNextRunAt(dag.dagId, logicalDate, next))) return { created, nextCheckAt: now };
    cursor = next;
  }
  return { created, nextCheckAt: cursor === null ? NO_MORE_RUNS : dueAt(spec, cursor) };
}

export interface TriggerOptions {
  params?: Record<string, unknown>;
  /** Default `manual__<ISO time>`; with several runs an explicit id is not allowed. */
  runId?: string;
  now?: number;
  /**
   * The run's logical date (default: the trigger time); its data interval is inferred from
   * it (see data-interval.ts). With an explicit logical date the default run id is
   * `manual__<logical date>`, and a second run at that date is refused.
   */
  logicalDate?: number;
  /**
   * Insert the run already claimed by this owner (`kiln dags test` drives its own run);
   * default unclaimed, for whichever scheduler claims it.
   */
  claimedBy?: string;
}

/**
 * Inserts one manual run, queued, with its task instances. Without an explicit run id, a
 * trigger in the same millisecond as another gets the next free millisecond.
 */
export async function triggerRun(store: Store, dag: Pick<DagRow, 'dagId' | 'version' | 'serialized'>, options: TriggerOptions = {}): Promise<{ run: RunRow; tis: TiRow[] }> {
  // Refused before anything is written: a bad value never leaves a run behind. Without a
  // schema the run keeps only the params it was given (the DAG's are merged at run time).
  const resolved = resolveRunParams(dag.serialized, options.params);
  const params = dag.serialized.paramsSchema == null ? (options.params ?? {}) : resolved;
  let at = options.now ?? Date.now();
  const fixedDate = options.logicalDate;
  for (let attempt = 0; attempt < 1000; attempt++, at++) {
    const logicalDate = fixedDate ?? at;
    const runId = options.runId ?? `manual__${new Date(logicalDate).toISOString()}`;
    const run = newRunRow(dag, runId, 'manual', logicalDate, manualInterval(dag.serialized.schedule, logicalDate), params, at, options.claimedBy ?? null);
    const tis = initialTaskInstances(dag.dagId, runId, dag.serialized.tasks);
    if (await store.createRun(run, tis)) return { run, tis };
    if (options.runId !== undefined || fixedDate !== undefined) throw new UsageError(`run '${runId}' of DAG '${dag.dagId}' already exists`);
  }
  throw new KilnError('STORE', `could not find a free run id for DAG '${dag.dagId}' near ${new Date(at).toISOString()}`);
}

/** A scheduled run's params: the DAG's, with the schema's defaults (checked when the DAG was parsed). */
function scheduledParams(spec: DagRow['serialized']): Record<string, unknown> {
  try {
    return spec.paramsSchema == null ? {} : resolveRunParams(spec);
  } catch {
    return {}; // parsed before the check existed: run with the DAG's params, as before
  }
}

export function newRunRow(dag: { dagId: string; version: string }, runId: string, runType: RunRow['runType'], logicalDate: number, interval: DataInterval, params: Record<string, unknown>, now: number, claimedBy: string | null): RunRow {
  return {
    dagId: dag.dagId, runId, runType, logicalDate, ...interval, state: 'queued', params, dagVersion: dag.version,
    queuedAt: now, startedAt: null, endedAt: null, claimedBy,
  };
}
