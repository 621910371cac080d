/**
 * The change feed's rows, built from what a write batch changed. Pure and shared by both
 * dialects: each appends the rows with one multi-row insert, last in the transaction of the
 * change itself, so a reader never sees a change that did not commit nor misses one that did.
 */
import type { ChangeEventRow, RunRow, WriteBatch } from './types.js';

/** Only writes that applied and changed a state (or a try number) are events: a same-state rewrite (a running try's pid) is not. */
export function batchEvents(batch: WriteBatch, tis: readonly boolean[], runs: readonly boolean[], poolFull?: readonly number[]): ChangeEventRow[] {
  const out: ChangeEventRow[] = [];
  (batch.tis ?? []).forEach((w, i) => {
    if (!tis[i]) return;
    const row = poolFull?.includes(i) && w.ifPoolFull !== undefined ? w.ifPoolFull : w.row;
    if (w.expect.states.length === 1 && w.expect.states[0] === row.state && w.expect.tryNumber === row.tryNumber) return;
    out.push({ kind: 'ti', dagId: row.dagId, runId: row.runId, taskId: row.taskId, state: row.state, tryNumber: row.tryNumber });
  });
  (batch.runs ?? []).forEach((w, i) => {
    if (!runs[i]) return;
    if (w.expectStates.length === 1 && w.expectStates[0] === w.set.state) return;
    out.push({ kind: 'run', dagId: w.dagId, runId: w.runId, taskId: null, state: w.set.state, tryNumber: null });
  });
  return out;
}

export function runEvent(run: Pick<RunRow, 'dagId' | 'runId'>, state: RunRow['state']): ChangeEventRow {
  return { kind: 'run', dagId: run.dagId, runId: run.runId, taskId: null, state, tryNumber: null };
}

/** The rows as one JSON array of tuples (SQLite unpacks it with json_each, in order). */
export function eventsJson(rows: readonly ChangeEventRow[]): string {
  return JSON.stringify(rows.map((r) => [r.kind, r.dagId, r.runId, r.taskId, r.state, r.tryNumber]));
}

/** The rows as one array per column (PostgreSQL unpacks them with unnest, in order). */
export function eventColumns(rows: readonly ChangeEventRow[], at: number) {
  return {
    ats: rows.map(() => at),
    kinds: rows.map((r) => r.kind),
    dagIds: rows.map((r) => r.dagId),
    runIds: rows.map((r) => r.runId),
    taskIds: rows.map((r) => r.taskId),
    states: rows.map((r) => r.state),
    tryNumbers: rows.map((r) => r.tryNumber),
  };
}

/** How far the feed is trimmed in one statement: the rest waits for the next call. */
export const EVENT_TRIM_BATCH = 10_000;
