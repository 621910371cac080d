/**
 * Store.write on SQLite: every write of a batch in one BEGIN IMMEDIATE transaction, through
 * the prepared statements (SQLite has one writer, so nothing changes between a read and a
 * write of the batch). better-sqlite3 is synchronous: a statement costs microseconds, so
 * unlike PostgreSQL one statement per row is cheap here; only an expansion's rows, up to
 * thousands, go in chunks of a multi-row insert (statements.ts, TI_INSERT_CHUNK).
 */
import type Database from 'better-sqlite3';
import { batchEvents } from '../feed.js';
import { callbackValues, encodeXcom, mapIndexOf, runWriteValues, tiValues } from '../rows.js';
import type { TiExpansion, TiRow, TiWrite, WriteBatch, WriteBatchResult } from '../types.js';
import { appendSqliteEvents } from './feed-statements.js';
import { TI_INSERT_CHUNK, type SqliteStatements } from './statements.js';

/** Thrown inside an expansion's savepoint to undo it; never leaves this module. */
const REFUSED = Symbol('expansion refused');

/**
 * The transaction function of Store.write (called with `.immediate(batch)`). `statements`
 * is read per batch: the store prepares them lazily (see store.ts).
 */
export function sqliteBatchWriter(sqlite: Database.Database, statements: () => SqliteStatements): Database.Transaction<(batch: WriteBatch) => WriteBatchResult> {
  // A transaction function called inside another runs as a SAVEPOINT (better-sqlite3):
  // throwing out of it rolls back this expansion only, and the batch goes on.
  const expandInSavepoint = sqlite.transaction((s: SqliteStatements, e: TiExpansion) => {
    if (!applyExpansion(s, e)) throw REFUSED;
  });
  const expand = (s: SqliteStatements, e: TiExpansion): boolean => {
    try {
      expandInSavepoint(s, e);
      return true;
    } catch (err) {
      if (err === REFUSED) return false;
      throw err;
    }
  };
  return sqlite.transaction((batch: WriteBatch) => applyBatch(statements(), batch, expand));
}

/**
 * In one transaction: expansions first (each all or nothing), then task-instance
 * compare-and-sets, in order (a later write of the same TI sees the earlier one), those that
 * take pool slots last; then heartbeats (which only touch tries still running), XComs, run
 * states, callbacks, and last the change feed's rows.
 */
function applyBatch(s: SqliteStatements, batch: WriteBatch, expand: (s: SqliteStatements, e: TiExpansion) => boolean): WriteBatchResult {
  const expansions = batch.expansions?.map((e) => expand(s, e));
  const { tis, poolFull, poolRoom } = writeTis(s, batch.tis ?? []);
  if (batch.heartbeats !== undefined) {
    const at = batch.heartbeats.at;
    for (const k of batch.heartbeats.keys) {
      s.tiHeartbeat.run({ dagId: k.dagId, runId: k.runId, taskId: k.taskId, mapIndex: mapIndexOf(k), tryNumber: k.tryNumber, at });
    }
  }
  for (const x of batch.xcoms ?? []) {
    s.xcomUpsert.run({ dagId: x.dagId, runId: x.runId, taskId: x.taskId, mapIndex: mapIndexOf(x), value: encodeXcom(x.value) });
  }
  const runs = (batch.runs ?? []).map((w) => s.runSet.run(runWriteValues(w, JSON.stringify(w.expectStates))).changes === 1);
  // A callback is owed only if the change that owes it applied.
  for (const c of batch.callbacks ?? []) {
    if ((c.ifTi !== undefined && !tis[c.ifTi]) || (c.ifRun !== undefined && !runs[c.ifRun])) continue;
    s.callbackInsert.run(callbackValues(c.row));
  }
  for (const id of batch.callbacksDone ?? []) s.callbackDelete.run({ id });
  const result: WriteBatchResult = {
    ...(expansions === undefined ? {} : { expansions }),
    tis,
    runs,
    ...(poolRoom === undefined ? {} : { poolFull, poolRoom }),
  };
  appendSqliteEvents(s, batchEvents(batch, result));
  return result;
}

/**
 * Deletes the unexpanded instance (if the expansion names one) and inserts the new rows;
 * false at the first thing that is not as expected (the caller's savepoint undoes the rest):
 * the placeholder gone or moved on, or a row already there.
 */
function applyExpansion(s: SqliteStatements, e: TiExpansion): boolean {
  if (e.placeholder !== null) {
    const key = { dagId: e.dagId, runId: e.runId, taskId: e.taskId, expectStates: JSON.stringify(e.placeholder.expectStates) };
    if (s.tiDeletePlaceholder.run(key).changes === 0) return false;
  }
  // Whole chunks through the multi-row insert, the rest one row per statement.
  let i = 0;
  for (; i + TI_INSERT_CHUNK <= e.rows.length; i += TI_INSERT_CHUNK) {
    if (s.tiInsertChunkIfAbsent(e.rows.slice(i, i + TI_INSERT_CHUNK)) !== TI_INSERT_CHUNK) return false;
  }
  for (; i < e.rows.length; i++) {
    if (s.tiInsertIfAbsent.run(tiValues(e.rows[i]!)).changes === 0) return false;
  }
  return true;
}

/**
 * Task-instance compare-and-sets, in order; then the writes that take pool slots, in order,
 * each while its pool has room (see WriteBatch). The room is read once per pool, after the
 * writes before it freed theirs.
 */
function writeTis(s: SqliteStatements, writes: readonly TiWrite[]): Pick<WriteBatchResult, 'tis' | 'poolFull' | 'poolRoom'> {
  const cas = (row: TiRow, w: TiWrite): boolean =>
    s.tiCompareAndSet.run(tiValues(row, w.expect.tryNumber, JSON.stringify(w.expect.states))).changes === 1;
  const tis = writes.map((w) => w.ifPoolFull === undefined && cas(w.row, w));
  let poolFull: number[] | undefined;
  let poolRoom: Record<string, number> | undefined;
  writes.forEach((w, i) => {
    if (w.ifPoolFull === undefined) return;
    poolRoom ??= {};
    poolFull ??= [];
    const name = w.row.pool;
    poolRoom[name] ??= (s.poolSize.get({ name })?.slots ?? 0) - Number(s.poolUsed.get({ name })?.used ?? 0);
    if (w.row.poolSlots <= poolRoom[name]!) {
      tis[i] = cas(w.row, w);
      if (tis[i]) poolRoom[name]! -= w.row.poolSlots;
    } else {
      poolFull.push(i);
      tis[i] = cas(w.ifPoolFull, w);
    }
  });
  return { tis, poolFull, poolRoom };
}
