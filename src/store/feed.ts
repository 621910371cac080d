/**
 * The change feed's rows, built from what a write batch changed. Pure and shared by both
 * dialects: each appends the rows with one multi-row insert, last in the transaction of the
 * change itself, so a reader never sees a change that did not commit nor misses one that did.
 */
import { mapIndexOf } from './rows.js';
import type { ChangeEventRow, RunRow, TiRow, WriteBatch, WriteBatchResult } from './types.js';

/**
 * In the order the batch applied them: every row an applied expansion inserted, then the
 * task-instance and run writes that applied and changed a state (or a try number); a
 * same-state rewrite (a running try's pid) is no event. An expansion's deleted placeholder
 * (map index -1) is no event either: no state says "gone".
 */
export function batchEvents(batch: WriteBatch, applied: Pick<WriteBatchResult, 'expansions' | 'tis' | 'runs' | 'poolFull'>): ChangeEventRow[] {
  const out: ChangeEventRow[] = [];
  (batch.expansions ?? []).forEach((e, i) => {
    if (applied.expansions?.[i]) for (const row of e.rows) out.push(tiEvent(row));
  });
  (batch.tis ?? []).forEach((w, i) => {
    if (!applied.tis[i]) return;
    const row = applied.poolFull?.includes(i) && w.ifPoolFull !== undefined ? w.ifPoolFull : w.row;
    if (w.expect.states.length === 1 && w.expect.states[0] === row.state && w.expect.tryNumber === row.tryNumber) return;
    out.push(tiEvent(row));
  });
  (batch.runs ?? []).forEach((w, i) => {
    if (!applied.runs[i]) return;
    if (w.expectStates.length === 1 && w.expectStates[0] === w.set.state) return;
    out.push(runEvent(w, w.set.state));
  });
  return out;
}

function tiEvent(row: TiRow): ChangeEventRow {
  return { kind: 'ti', dagId: row.dagId, runId: row.runId, taskId: row.taskId, mapIndex: mapIndexOf(row), state: row.state, tryNumber: row.tryNumber };
}

export function runEvent(run: Pick<RunRow, 'dagId' | 'runId'>, state: RunRow['state']): ChangeEventRow {
  return { kind: 'run', dagId: run.dagId, runId: run.runId, taskId: null, mapIndex: null, state, tryNumber: null };
}

/**
 * The rows as one JSON array of tuples (SQLite unpacks it with json_each, in order). The
 * tuple's order is the event table's column order after (id, at): see sqlite/feed-statements.ts.
 */
export function eventsJson(rows: readonly ChangeEventRow[]): string {
  return JSON.stringify(rows.map((r) => [r.kind, r.dagId, r.runId, r.taskId, r.mapIndex, r.state, r.tryNumber]));
}

/** The rows as one array per column (PostgreSQL unpacks them with unnest, in order). */
export function eventColumns(rows: readonly ChangeEventRow[], at: number) {
  return {
    ats: rows.map(() => at),
    kinds: rows.map((r) => r.kind),
    dagIds: rows.map((r) => r.dagId),
    runIds: rows.map((r) => r.runId),
    taskIds: rows.map((r) => r.taskId),
    mapIndexes: rows.map((r) => r.mapIndex),
    states: rows.map((r) => r.state),
    tryNumbers: rows.map((r) => r.tryNumber),
  };
}

/** How far the feed is trimmed in one statement: the rest waits for the next call. */
export const EVENT_TRIM_BATCH = 10_000;
