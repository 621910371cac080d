/**
 * Store.write on PostgreSQL: one transaction and a handful of round trips whatever the batch
 * size. Expansions first (each all or nothing, inside a savepoint), then task-instance
 * compare-and-sets (one bulk statement; one statement per write, in order, if the batch names
 * a TI twice, so a later write sees the earlier one; writes that queue tries within pool
 * limits last, see writeWithinPools), then all heartbeats (only tries still running are
 * touched), all XComs (the last value per key wins), run states, callbacks, and last the
 * change feed's rows.
 */
import { batchEvents, eventColumns } from '../feed.js';
import { callbackValues, encodeXcom, mapIndexOf, runWriteValues, tiValues } from '../rows.js';
import type { TiExpansion, TiKey, TiRow, TiWrite, WriteBatch, WriteBatchResult, XcomWrite } from '../types.js';
import type { PgPipeline } from './pipeline.js';
import { TI_COLUMNS, type PgStatements } from './statements.js';

/** What a batch needs before its connection is checked out (see planPgBatch). */
export interface PgBatchPlan {
  /** The XComs, the last one per key. */
  xcoms: XcomWrite[];
  /** Their values, encoded before BEGIN: a value that is not JSON fails the call without a round trip. */
  xcomValues: Array<string | null>;
  /**
   * Whether the batch runs more than one statement. A single statement is atomic by itself:
   * BEGIN and COMMIT would only add two round trips (the supervisor's heartbeat-only batches
   * are the common case).
   */
  transaction: boolean;
}

/** null: the batch writes nothing. */
export function planPgBatch(batch: WriteBatch): PgBatchPlan | null {
  const expansions = batch.expansions?.length ?? 0;
  const tiWrites = batch.tis ?? [];
  const runs = batch.runs?.length ?? 0;
  const xcoms = lastPerKey(batch.xcoms ?? []);
  const callbacks = batch.callbacks?.length ?? 0;
  const callbacksDone = batch.callbacksDone?.length ?? 0;
  const heartbeats = batch.heartbeats?.keys.length ?? 0;
  if (expansions + tiWrites.length + runs + xcoms.length + callbacks + callbacksDone + heartbeats === 0) return null;
  const withinPools = tiWrites.some((w) => w.ifPoolFull !== undefined);
  const statements =
    2 * expansions + // at least a savepoint and an insert, or a delete and the feed's rows
    (withinPools ? 2 : casStatements(tiWrites)) + (heartbeats > 0 ? 1 : 0) + (xcoms.length > 0 ? 1 : 0) + runs +
    callbacks + (callbacksDone > 0 ? 1 : 0) +
    (tiWrites.length > 0 || runs > 0 ? 1 : 0); // the change feed's rows, if any applied
  return { xcoms, xcomValues: xcoms.map((x) => encodeXcom(x.value)), transaction: statements > 1 };
}

/**
 * Applies the batch on one connection (inside BEGIN/COMMIT when plan.transaction), in as few
 * round trips as the answers allow (see pipeline.ts): expansions one by one (each needs the
 * last answer); then every statement that needs no answer, sent together; then, once their
 * answers are in, the callbacks owed and the change feed's rows, which the caller's COMMIT
 * follows without waiting. Queueing within pool limits adds one round trip (writeWithinPools).
 */
export async function applyPgBatch(s: PgStatements, batch: WriteBatch, plan: PgBatchPlan, pipe: PgPipeline): Promise<WriteBatchResult> {
  let expansions: boolean[] | undefined;
  if (batch.expansions !== undefined) {
    expansions = [];
    for (const e of batch.expansions) expansions.push(await expand(s, e));
  }
  const tiWrites = batch.tis ?? [];
  // Sent now, in this order; the pools' lock first, so it is held for as few round trips as can be.
  // Tracked by the pipe too: if a later step throws first, its rejection is still handled.
  const tisWritten = pipe.send<{ tis: boolean[]; poolFull?: number[]; poolRoom?: Record<string, number> }>(
    tiWrites.some((w) => w.ifPoolFull !== undefined)
      ? writeWithinPools(s, tiWrites, pipe)
      : compareAndSet(s, tiWrites, pipe).then((tis) => ({ tis, poolFull: undefined, poolRoom: undefined })),
  );
  const hb = batch.heartbeats;
  if (hb !== undefined && hb.keys.length > 0) {
    pipe.send(
      s.tiHeartbeats.execute({
        at: hb.at,
        dagIds: hb.keys.map((k) => k.dagId),
        runIds: hb.keys.map((k) => k.runId),
        taskIds: hb.keys.map((k) => k.taskId),
        mapIndexes: hb.keys.map(mapIndexOf),
        tryNumbers: hb.keys.map((k) => k.tryNumber),
      }),
    );
  }
  const { xcoms } = plan;
  if (xcoms.length > 0) {
    pipe.send(
      s.xcomUpsertMany.execute({
        dagIds: xcoms.map((x) => x.dagId),
        runIds: xcoms.map((x) => x.runId),
        taskIds: xcoms.map((x) => x.taskId),
        mapIndexes: xcoms.map(mapIndexOf),
        values: plan.xcomValues,
      }),
    );
  }
  const runsSet = (batch.runs ?? []).map((w) => pipe.send(s.runSet.execute(runWriteValues(w, w.expectStates))));
  const { tis, poolFull, poolRoom } = await tisWritten;
  const runs = (await Promise.all(runsSet)).map(affected);
  // A callback is owed only if the change that owes it applied.
  for (const c of batch.callbacks ?? []) {
    if ((c.ifTi !== undefined && !tis[c.ifTi]) || (c.ifRun !== undefined && !runs[c.ifRun])) continue;
    pipe.send(s.callbackInsert.execute(callbackValues(c.row)));
  }
  if (batch.callbacksDone?.length) pipe.send(s.callbacksDelete.execute({ ids: batch.callbacksDone }));
  const result: WriteBatchResult = {
    ...(expansions === undefined ? {} : { expansions }),
    tis,
    runs,
    ...(poolRoom === undefined ? {} : { poolFull, poolRoom }),
  };
  // Last: the feed's lock is held from here to COMMIT (see feed-statements.ts).
  const events = batchEvents(batch, result);
  if (events.length > 0) pipe.send(s.eventInsertMany.execute(eventColumns(events, Date.now())));
  return result;
}

/**
 * One expansion, all or nothing, without aborting the transaction: the placeholder's delete
 * and the rows' insert (ON CONFLICT DO NOTHING, so a row already there is no error) run
 * after a savepoint, rolled back to if fewer rows went in than were given. Savepoints are
 * not released: COMMIT releases them all, and a release would cost a round trip.
 */
async function expand(s: PgStatements, e: TiExpansion): Promise<boolean> {
  const deletePlaceholder = async (placeholder: NonNullable<TiExpansion['placeholder']>) =>
    affected(await s.tiDeletePlaceholder.execute({ dagId: e.dagId, runId: e.runId, taskId: e.taskId, expectStates: placeholder.expectStates }));
  // Nothing to insert: the delete alone is atomic.
  if (e.rows.length === 0) return e.placeholder === null || deletePlaceholder(e.placeholder);
  await s.savepoint();
  // Nothing written yet since the savepoint: no need to roll back to it.
  if (e.placeholder !== null && !(await deletePlaceholder(e.placeholder))) return false;
  const inserted = (await s.tiInsertManyIfAbsent.execute(tiColumns(e.rows))).rowCount ?? 0;
  if (inserted === e.rows.length) return true;
  await s.rollbackToSavepoint();
  return false;
}

/** One bulk statement, or one per write (in order) when the writes name a TI twice. */
function casStatements(writes: readonly TiWrite[]): number {
  return writes.length > 1 && lastPerKey(writes.map((w) => w.row)).length === writes.length ? 1 : writes.length;
}

/** Task-instance compare-and-sets (ifPoolFull ignored), all sent at once; per write, did it apply. */
async function compareAndSet(s: PgStatements, writes: readonly TiWrite[], pipe: PgPipeline): Promise<boolean[]> {
  if (casStatements(writes) === 1 && writes.length > 1) {
    const applied = await pipe.send(
      s.tiCompareAndSetMany.execute({
        ...tiColumns(writes.map((w) => w.row)),
        expectTryNumbers: writes.map((w) => w.expect.tryNumber),
        expectStates: writes.map((w) => w.expect.states.join(',')),
      }),
    );
    const tis = writes.map(() => false);
    for (const { ord } of applied) tis[ord - 1] = true;
    return tis;
  }
  // One statement per write, in order: PostgreSQL runs them in the order they were sent.
  const sent = writes.map((w) => pipe.send(s.tiCompareAndSet.execute(tiValues(w.row, w.expect.tryNumber, w.expect.states))));
  return (await Promise.all(sent)).map(affected);
}

/**
 * A batch that queues tries within pool limits (see WriteBatch), in two round trips: lock the
 * pools' rows, the other writes and the sum of the slots in use, sent together (the sum runs
 * after the lock is granted, so its snapshot sees what the scheduler that held it before
 * committed, and after the other writes, so it sees the slots they freed); then each queueing
 * write, in order, if its pool still has room, else its ifPoolFull row.
 */
async function writeWithinPools(s: PgStatements, writes: readonly TiWrite[], pipe: PgPipeline): Promise<{ tis: boolean[]; poolFull: number[]; poolRoom: Record<string, number> }> {
  const names = [...new Set(writes.filter((w) => w.ifPoolFull !== undefined).map((w) => w.row.pool))];
  const locked = pipe.send(s.poolLock.execute({ names }));
  const plain = writes.flatMap((w, i) => (w.ifPoolFull === undefined ? [i] : []));
  // Tracked by the pipe: if the lock's answer is an error (a lost connection), this one is
  // never awaited here, and an unhandled rejection would end the process.
  const plainWritten = plain.length > 0 ? pipe.send(compareAndSet(s, plain.map((i) => writes[i]!), pipe)) : Promise.resolve([]);
  const used = pipe.send(s.poolUsed.execute({ names }));
  const room: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0])); // a missing pool has no room
  for (const p of await locked) room[p.name] = p.slots;
  const tis = writes.map(() => false);
  (await plainWritten).forEach((ok, k) => (tis[plain[k]!] = ok));
  for (const u of await used) room[u.name]! -= u.used;
  const poolFull: number[] = [];
  const queueing = writes.flatMap((w, i) => {
    if (w.ifPoolFull === undefined) return [];
    if (w.row.poolSlots <= room[w.row.pool]!) {
      room[w.row.pool]! -= w.row.poolSlots;
      return [{ i, write: w }];
    }
    poolFull.push(i);
    return [{ i, write: { row: w.ifPoolFull, expect: w.expect } }];
  });
  (await compareAndSet(s, queueing.map((q) => q.write), pipe)).forEach((ok, k) => {
    const { i, write } = queueing[k]!;
    tis[i] = ok;
    // A try that did not apply (its run changed under us) took no slot after all.
    if (!ok && write.row.state === 'queued') room[write.row.pool]! += write.row.poolSlots;
  });
  return { tis, poolFull, poolRoom: room };
}

export function affected(r: { rowCount: number | null }): boolean {
  return (r.rowCount ?? 0) > 0;
}

/** The last entry per task-instance key (map index included), in first-seen order. */
function lastPerKey<T extends TiKey>(items: T[]): T[] {
  const byKey = new Map<string, T>();
  for (const it of items) byKey.set(`${it.dagId}\0${it.runId}\0${it.taskId}\0${mapIndexOf(it)}`, it);
  return [...byKey.values()];
}

/** Task instances as one array per column (tiValues: a missing map index is -1), for the unnest() statements. */
export function tiColumns(tis: TiRow[]): Record<string, unknown[]> {
  const values = tis.map((t) => tiValues(t));
  const out: Record<string, unknown[]> = {};
  for (const [key] of TI_COLUMNS) out[key] = values.map((v) => v[key]);
  return out;
}
