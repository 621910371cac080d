/**
 * Backfill: re-running history, one run per logical date of a range. The request is stored
 * (a backfill row: its dates in the order their runs are made, and a cursor), and whoever
 * drives it (the `kiln backfill` process, or with --queue the schedulers) calls
 * advanceBackfill() until the cursor reaches the end:
 *
 *   - at most maxActiveRuns runs of the backfill are queued or running at once;
 *   - each date gets its action decided when its turn comes, from the runs at that date then:
 *     none -> create a run `backfill__<date>`; queued or running -> never touched; finished ->
 *     cleared (set to run again, its try history kept) if `reprocess` says so, else skipped;
 *   - the cursor moves by compare-and-set, after the runs were made. Two schedulers advancing
 *     the same backfill at once decide the same dates from the same cursor: the run ids are
 *     derived from the date (a second insert is a no-op) and a clear is a compare-and-set on
 *     the run's state, so each run is made once, and the loser's cursor move fails.
 *
 * The scheduler's own schedule cursor is never touched.
 */
import type { SerializedDag } from '../dag/types.js';
import { UsageError } from '../errors.js';
import { REPROCESS_MODES, type BackfillRow, type Reprocess, type RunRow, type Store } from '../store/types.js';
import { scheduledInterval } from './data-interval.js';
import { clearAndTell, type RunContext } from './operations.js';
import { newRunRow } from './run-creation.js';
import { initialTaskInstances } from './run-state.js';
import { ONCE, pointAfter } from './schedule.js';

export { REPROCESS_MODES, type Reprocess };

/** Most dates one backfill may cover: a typo in --from should not create a million runs. */
export const MAX_BACKFILL_DATES = 10_000;

/** The schedule points t with from <= t <= to, oldest first (newest first with `backwards`). */
export function backfillDates(dag: Pick<SerializedDag, 'dagId' | 'schedule'>, from: number, to: number, backwards = false): number[] {
  if (dag.schedule === null || dag.schedule === ONCE) {
    throw new UsageError(`DAG '${dag.dagId}' has no schedule (${dag.schedule === null ? 'null' : ONCE}): there are no logical dates to backfill; use \`kiln dags trigger --logical-date\``);
  }
  if (to < from) throw new UsageError(`--to (${iso(to)}) is before --from (${iso(from)})`);
  const dates: number[] = [];
  // The first point at or after `from`.
  for (let t = pointAfter(dag.schedule, from - 1); t <= to; t = pointAfter(dag.schedule, t)) {
    dates.push(t);
    if (dates.length > MAX_BACKFILL_DATES) throw new UsageError(`the range ${iso(from)} to ${iso(to)} holds more than ${MAX_BACKFILL_DATES} runs of '${dag.schedule}'; backfill it in parts`);
  }
  return backwards ? dates.reverse() : dates;
}

export function backfillRunId(logicalDate: number): string {
  return `backfill__${iso(logicalDate)}`;
}

export type DateAction =
  | { action: 'create'; runId: string }
  | { action: 'clear'; runId: string; was: RunRow['state'] }
  | { action: 'skip'; runId: string; was: RunRow['state']; why: string };

/** What happens to a date whose turn has come, given the run at that date now (if any). */
export function dateAction(logicalDate: number, existing: RunRow | undefined, reprocess: Reprocess): DateAction {
  if (existing === undefined) return { action: 'create', runId: backfillRunId(logicalDate) };
  const { runId, state } = existing;
  if (state === 'queued' || state === 'running') return { action: 'skip', runId, was: state, why: `run ${runId} is ${state}` };
  if (reprocess === 'completed' || (reprocess === 'failed' && state === 'failed')) return { action: 'clear', runId, was: state };
  return { action: 'skip', runId, was: state, why: `run ${runId} ${state === 'success' ? 'succeeded' : 'failed'} (--reprocess ${reprocess})` };
}

/** One run per logical date: the latest-queued run at each date of the DAG's runs in [from, to]. */
export async function runsByDate(store: Store, dagId: string, dates: readonly number[]): Promise<Map<number, RunRow>> {
  const byDate = new Map<number, RunRow>();
  if (dates.length === 0) return byDate;
  const rows = await store.listRunsByLogicalDate(dagId, Math.min(...dates), Math.max(...dates));
  for (const r of rows) {
    const seen = byDate.get(r.logicalDate);
    if (seen === undefined || seen.queuedAt < r.queuedAt) byDate.set(r.logicalDate, r);
  }
  return byDate;
}

export interface AdvanceResult {
  /** Runs made runnable by this step (created or cleared), queued. */
  started: Array<{ logicalDate: number; runId: string; action: 'create' | 'clear' }>;
  skipped: Array<{ logicalDate: number; runId: string; why: string }>;
  /** Runs of the backfill queued or running after this step. */
  active: number;
  /** The cursor reached the end: every date had its turn. */
  done: boolean;
  /** Another driver moved the cursor first: read the backfill again. */
  lost: boolean;
}

/**
 * Makes the next runs of a backfill, as many as its active-run limit allows, and moves its
 * cursor. `claimFor`: the driving process's id (runs are made claimed by it, so no scheduler
 * takes them), or null (schedulers claim them).
 */
export async function advanceBackfill(store: Store, backfill: BackfillRow, dag: Pick<RunRow, 'dagVersion'> & { serialized: SerializedDag }, claimFor: string | null, now: number): Promise<AdvanceResult> {
  const result: AdvanceResult = { started: [], skipped: [], active: 0, done: false, lost: false };
  const byDate = await runsByDate(store, backfill.dagId, backfill.dates);
  const isActive = (r: RunRow | undefined) => r !== undefined && (r.state === 'queued' || r.state === 'running');
  const mine = (d: number) => byDate.get(d);
  result.active = backfill.dates.slice(0, backfill.cursor).filter((d) => isActive(mine(d))).length;
  let cursor = backfill.cursor;
  while (cursor < backfill.dates.length && result.active < backfill.maxActiveRuns) {
    const logicalDate = backfill.dates[cursor]!;
    const act = dateAction(logicalDate, byDate.get(logicalDate), backfill.reprocess);
    if (act.action === 'create') {
      const run = newRunRow({ dagId: backfill.dagId, version: dag.dagVersion }, act.runId, 'backfill', logicalDate, scheduledInterval(dag.serialized.schedule, logicalDate), backfill.params, now, claimFor);
      // false: another driver made it a moment ago; it is the same run.
      await store.createRun(run, initialTaskInstances(backfill.dagId, act.runId, dag.serialized.tasks));
      result.started.push({ logicalDate, runId: act.runId, action: 'create' });
      result.active++;
    } else if (act.action === 'clear') {
      const cleared = await clearForBackfill(store, backfill.dagId, act.runId, claimFor);
      if (cleared) {
        result.started.push({ logicalDate, runId: act.runId, action: 'clear' });
        result.active++;
      } else result.skipped.push({ logicalDate, runId: act.runId, why: `run ${act.runId} changed meanwhile` });
    } else {
      result.skipped.push({ logicalDate, runId: act.runId, why: act.why });
      // A run queued or running at the date takes a slot too: it may be this backfill's own,
      // made a moment ago by another driver from the same cursor (counting it keeps the limit).
      if (act.was === 'queued' || act.was === 'running') result.active++;
    }
    cursor++;
  }
  const done = cursor >= backfill.dates.length;
  if (cursor !== backfill.cursor || (done && backfill.state !== 'done')) {
    const moved = await store.advanceBackfill(backfill.id, backfill.cursor, { cursor, state: done ? 'done' : 'running', driver: claimFor });
    if (!moved) return { ...result, lost: true };
  }
  return { ...result, done };
}

/**
 * Clears every task instance of a finished run and sets it back to queued (claimed by
 * `claimFor`), in one compare-and-set batch; false if the run is not finished any more or
 * another process cleared it first.
 */
async function clearForBackfill(store: Store, dagId: string, runId: string, claimFor: string | null): Promise<boolean> {
  const run = await store.getRun(dagId, runId);
  if (!run || (run.state !== 'success' && run.state !== 'failed')) return false;
  const dag = await store.getDagVersion(dagId, run.dagVersion);
  if (!dag) return false;
  const ctx: RunContext = { run, dag, tis: await store.getTaskInstances(dagId, runId) };
  return (await clearAndTell(store, ctx, { claimFor, requeueOnConflict: false })).runRequeued;
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
