/**
 * Every statement the SQLite store runs, built and prepared once when the store opens.
 * Values arrive through named placeholders; sets of states arrive as a JSON array and are
 * unpacked with json_each, so `state IN (...)` needs no SQL rebuilt per call.
 * better-sqlite3 binds no JS booleans: flags are passed as 1/0.
 */
import type Database from 'better-sqlite3';
import { and, asc, count, desc, eq, inArray, lt, Placeholder, sql, type SQL } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import { UNMAPPED } from '../../dag/types.js';
import { ACTIVE_RUN_STATES, FINISHED_RUN_STATES, TI_FIELDS, TI_MUTABLE_FIELDS, tiValues } from '../rows.js';
import type { TiRow } from '../types.js';
import { lazyStatements } from '../lazy-statements.js';
import { prepareSqliteCallbackStatements } from './callback-statements.js';
import { prepareSqliteFeedStatements } from './feed-statements.js';
import { dag, dagRun, dagVersion, importError, pool, scheduler, taskInstance as ti, xcom } from './schema.js';

const p = sql.placeholder;
/** `sql` around a placeholder: accepted by .set() and .values() without column encoding. */
const v = (name: string): SQL => sql`${p(name)}`;
const inJson = (col: SQLiteColumn, name: string): SQL => sql`${col} in (select value from json_each(${p(name)}))`;
const placeholders = <K extends string>(names: readonly K[]): Record<K, SQL> =>
  Object.fromEntries(names.map((n) => [n, v(n)])) as Record<K, SQL>;

export type SqliteStatements = ReturnType<typeof prepareSqliteStatements>;

/** The drizzle database with its better-sqlite3 connection (what drizzle({ client }) returns). */
export type SqliteDb = BetterSQLite3Database & { $client: Database.Database };

/** Rows per statement of tiInsertChunkIfAbsent: 200 rows of 25 values, far below SQLite's 32,766 parameters. */
export const TI_INSERT_CHUNK = 200;

/**
 * A multi-row insert of TI_INSERT_CHUNK task instances, a row already there left alone:
 * drizzle writes the one-row SQL, its values group is repeated, and better-sqlite3 runs it with
 * one flat array of values. 10,000 rows measured ~30 ms this way, ~42 ms with one statement
 * per row. (Letting drizzle write all 200 rows cost ~150 ms at every store open: every
 * command's cold start.) `run` returns how many rows went in.
 */
function prepareTiInsertChunk(db: SqliteDb): (rows: readonly TiRow[]) => number {
  const one = db.insert(ti).values(placeholders(TI_FIELDS)).onConflictDoNothing().toSQL();
  // The values' order within a row, as drizzle wrote them (the table's column order).
  const fields = one.params.map((param) => (param as Placeholder).name as (typeof TI_FIELDS)[number]);
  const group = `(${fields.map(() => '?').join(', ')})`;
  if (fields.length !== TI_FIELDS.length || !one.params.every((param) => param instanceof Placeholder) || one.sql.split(`values ${group}`).length !== 2) {
    throw new Error('kiln: unexpected SQL for the task-instance chunk insert');
  }
  const statement = db.$client.prepare(one.sql.replace(`values ${group}`, `values ${Array.from({ length: TI_INSERT_CHUNK }, () => group).join(', ')}`));
  return (rows) => {
    const values: unknown[] = [];
    for (const row of rows) {
      const v = tiValues(row);
      for (const f of fields) values.push(v[f]);
    }
    return statement.run(values).changes;
  };
}

export function prepareSqliteStatements(db: SqliteDb) {
  const tiKey = and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId')), eq(ti.taskId, p('taskId')), eq(ti.mapIndex, p('mapIndex')));
  const taskKey = and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId')), eq(ti.taskId, p('taskId')));
  const runKey = and(eq(dagRun.dagId, p('dagId')), eq(dagRun.runId, p('runId')));
  const xcomKey = and(eq(xcom.dagId, p('dagId')), eq(xcom.runId, p('runId')), eq(xcom.taskId, p('taskId')), eq(xcom.mapIndex, p('mapIndex')));

  const built = lazyStatements({
    // Task instances: the hot path.
    tiCompareAndSet: () => db
      .update(ti)
      .set(placeholders(TI_MUTABLE_FIELDS))
      .where(and(tiKey, eq(ti.tryNumber, p('expectTryNumber')), inJson(ti.state, 'expectStates')))
      .prepare(),
    tiHeartbeat: () => db
      .update(ti)
      .set({ lastHeartbeatAt: v('at') })
      .where(and(tiKey, eq(ti.tryNumber, p('tryNumber')), eq(ti.state, 'running')))
      .prepare(),
    tiInsert: () => db.insert(ti).values(placeholders(TI_FIELDS)).prepare(),
    // Expansions (see write-batch.ts): a row already there is left alone and counted as not
    // inserted (changes 0), whole chunks of rows at a time and the rest one by one; and the
    // unexpanded instance goes only from the expected states, before its first try.
    tiInsertIfAbsent: () => db.insert(ti).values(placeholders(TI_FIELDS)).onConflictDoNothing().prepare(),
    tiInsertChunkIfAbsent: () => prepareTiInsertChunk(db),
    tiDeletePlaceholder: () => db
      .delete(ti)
      .where(and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId')), eq(ti.taskId, p('taskId')), eq(ti.mapIndex, UNMAPPED), eq(ti.tryNumber, 0), inJson(ti.state, 'expectStates')))
      .prepare(),
    tisOfRun: () => db
      .select()
      .from(ti)
      .where(and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId'))))
      .orderBy(asc(ti.taskId), asc(ti.mapIndex))
      .prepare(),
    tiGet: () => db.select().from(ti).where(tiKey).prepare(),
    // One task's instances (Store.taskInstancesOf, taskStateCounts): the primary-key range
    // (dag_id, run_id, task_id), read in map-index order (no sort); LIMIT -1 is no limit.
    tisOfTask: () => db
      .select()
      .from(ti)
      .where(taskKey)
      .orderBy(asc(ti.mapIndex))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(),
    // `+`: the states are a filter on the task's rows, never a read of the state index.
    tisOfTaskInStates: () => db
      .select()
      .from(ti)
      .where(and(taskKey, sql`+${ti.state} in (select value from json_each(${p('states')}))`))
      .orderBy(asc(ti.mapIndex))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(),
    tiStateCountsOfTask: () => db
      .select({ state: ti.state, count: sql<number>`count(*)`, maxMapIndex: sql<number>`max(${ti.mapIndex})` })
      .from(ti)
      .where(taskKey)
      .groupBy(ti.state)
      .prepare(),
    // Only the running rows whose liveness is older than `before`: the state index narrows
    // the scan to running TIs, never the whole table.
    tiZombies: () => db
      .select()
      .from(ti)
      .where(and(eq(ti.state, 'running'), lt(sql`coalesce(${ti.lastHeartbeatAt}, ${ti.startedAt}, ${ti.queuedAt})`, p('before'))))
      .limit(p('limit'))
      .prepare(),
    tiStaleQueued: () => db
      .select()
      .from(ti)
      .where(and(eq(ti.state, 'queued'), lt(ti.queuedAt, p('before'))))
      .limit(p('limit'))
      .prepare(),
    // Pool room, read inside the write transaction that queues tries (SQLite has one writer,
    // so nothing changes between this count and the writes). The state index narrows the
    // sum to the queued and running rows, never the whole table.
    poolSize: () => db.select({ slots: pool.slots }).from(pool).where(eq(pool.name, p('name'))).prepare(),
    poolUsed: () => db
      .select({ used: sql<number>`coalesce(sum(${ti.poolSlots}), 0)` })
      .from(ti)
      .where(and(inArray(ti.state, ['queued', 'running']), eq(ti.pool, p('name'))))
      .prepare(),

    // Runs.
    runInsert: () => db
      .insert(dagRun)
      .values(placeholders(['dagId', 'runId', 'runType', 'logicalDate', 'dataIntervalStart', 'dataIntervalEnd', 'state', 'params', 'dagVersion', 'queuedAt', 'startedAt', 'endedAt', 'claimedBy', 'failureReason']))
      .onConflictDoNothing()
      .prepare(),
    runSet: () => db
      .update(dagRun)
      .set({
        state: v('state'),
        startedAt: sql`case when ${p('setStartedAt')} then ${p('startedAt')} else ${dagRun.startedAt} end`,
        endedAt: sql`case when ${p('setEndedAt')} then ${p('endedAt')} else ${dagRun.endedAt} end`,
        failureReason: sql`case when ${p('setFailureReason')} then ${p('failureReason')} else ${dagRun.failureReason} end`,
        claimedBy: sql`case when ${p('setClaimedBy')} then ${p('claimedBy')} else ${dagRun.claimedBy} end`,
      })
      .where(and(runKey, inJson(dagRun.state, 'expectStates')))
      .prepare(),
    runGet: () => db.select().from(dagRun).where(runKey).prepare(),
    // The latest successful run before a logical date (dag_run_logical_date_idx, read backwards).
    runPrevSuccess: () => db
      .select({ dataIntervalStart: dagRun.dataIntervalStart, dataIntervalEnd: dagRun.dataIntervalEnd })
      .from(dagRun)
      .where(and(eq(dagRun.dagId, p('dagId')), eq(dagRun.state, 'success'), lt(dagRun.logicalDate, p('before'))))
      .orderBy(desc(dagRun.logicalDate))
      .limit(1)
      .prepare(),
    // Starts a queued run this scheduler holds while its DAG has fewer than maxActiveRuns
    // running: count and change in one statement, and SQLite has one writer.
    runStart: () => db
      .update(dagRun)
      .set({ state: 'running', startedAt: v('now') })
      .where(
        and(
          runKey,
          eq(dagRun.state, 'queued'),
          eq(dagRun.claimedBy, p('schedulerId')),
          sql`exists (select 1 from ${dag} d where d.dag_id = ${p('dagId')})`,
          sql`(select count(*) from ${dagRun} r where r.dag_id = ${p('dagId')} and r.state = 'running') < ${p('maxActiveRuns')}`,
        ),
      )
      .prepare(),
    runCountActive: () => db
      .select({ n: count() })
      .from(dagRun)
      .where(and(eq(dagRun.dagId, p('dagId')), inArray(dagRun.state, [...ACTIVE_RUN_STATES])))
      .prepare(),
    // Picks and claims up to `limit` active runs held by no live scheduler in one UPDATE, so
    // it is atomic (and SQLite has one writer anyway). Runs the caller already holds are left
    // alone (runsHeldBy reads them).
    runClaim: () => db
      .update(dagRun)
      .set({ claimedBy: v('schedulerId') })
      .where(
        sql`rowid in (select r.rowid from ${dagRun} r
          where r.state in ${[...ACTIVE_RUN_STATES]}
            and (r.claimed_by is null or r.claimed_by <> ${p('schedulerId')} and not exists (
              select 1 from ${scheduler} s where s.id = r.claimed_by and s.last_heartbeat_at >= ${p('deadBefore')}))
          order by r.queued_at, r.dag_id, r.run_id
          limit ${p('limit')})`,
      )
      
      .prepare(),
    runsHeldBy: () => db
      .select()
      .from(dagRun)
      .where(and(eq(dagRun.claimedBy, p('schedulerId')), inArray(dagRun.state, [...ACTIVE_RUN_STATES])))
      .orderBy(asc(dagRun.queuedAt), asc(dagRun.dagId), asc(dagRun.runId))
      .prepare(),
    runRelease: () => db
      .update(dagRun)
      .set({ claimedBy: null })
      .where(and(eq(dagRun.claimedBy, p('schedulerId')), inArray(dagRun.state, [...ACTIVE_RUN_STATES])))
      .prepare(),

    // Retention: finished runs that ended before `before`, oldest first, after the keyset
    // cursor. One range scan of dag_run_ended_at_idx (the cursor continues inside it); the
    // counts are primary-key prefix lookups per selected run, never a task-instance scan.
    runsExpired: () => db
      .select({
        dagId: dagRun.dagId,
        runId: dagRun.runId,
        endedAt: sql<number>`${dagRun.endedAt}`,
        taskInstances: sql<number>`(select count(*) from ${ti} t where t.dag_id = "dag_run"."dag_id" and t.run_id = "dag_run"."run_id")`,
        xcoms: sql<number>`(select count(*) from ${xcom} x where x.dag_id = "dag_run"."dag_id" and x.run_id = "dag_run"."run_id")`,
      })
      .from(dagRun)
      .where(
        and(
          lt(dagRun.endedAt, p('before')),
          inArray(dagRun.state, [...FINISHED_RUN_STATES]),
          sql`(${dagRun.endedAt}, ${dagRun.dagId}, ${dagRun.runId}) > (${p('afterEndedAt')}, ${p('afterDagId')}, ${p('afterRunId')})`,
        ),
      )
      .orderBy(asc(dagRun.endedAt), asc(dagRun.dagId), asc(dagRun.runId))
      .limit(p('limit'))
      .prepare(),
    tisDeleteOfRun: () => db
      .delete(ti)
      .where(and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId'))))
      .prepare(),
    xcomsDeleteOfRun: () => db
      .delete(xcom)
      .where(and(eq(xcom.dagId, p('dagId')), eq(xcom.runId, p('runId'))))
      .prepare(),
    runDelete: () => db.delete(dagRun).where(runKey).prepare(),

    // XCom.
    xcomUpsert: () => db
      .insert(xcom)
      .values(placeholders(['dagId', 'runId', 'taskId', 'mapIndex', 'value']))
      .onConflictDoUpdate({ target: [xcom.dagId, xcom.runId, xcom.taskId, xcom.mapIndex], set: { value: sql`excluded.value` } })
      .prepare(),
    xcomGet: () => db.select({ value: xcom.value }).from(xcom).where(xcomKey).prepare(),
    // Every XCom of one task in a run: a primary-key prefix range, already in map-index order.
    xcomsOfTask: () => db
      .select({ mapIndex: xcom.mapIndex, value: xcom.value })
      .from(xcom)
      .where(and(eq(xcom.dagId, p('dagId')), eq(xcom.runId, p('runId')), eq(xcom.taskId, p('taskId'))))
      .orderBy(asc(xcom.mapIndex))
      .prepare(),

    // DAGs.
    dagUpsert: () => db
      .insert(dag)
      .values({ ...placeholders(['dagId', 'file', 'version', 'serialized', 'nextRunAt', 'updatedAt']), isPaused: false })
      .onConflictDoUpdate({
        target: dag.dagId,
        set: {
          file: sql`excluded.file`,
          version: sql`excluded.version`,
          serialized: sql`excluded.serialized`,
          updatedAt: sql`excluded.updated_at`,
          nextRunAt: sql`case when ${p('setNextRunAt')} then excluded.next_run_at else ${dag.nextRunAt} end`,
        },
      })
      .prepare(),
    dagVersionInsert: () => db
      .insert(dagVersion)
      .values(placeholders(['dagId', 'version', 'serialized', 'createdAt']))
      .onConflictDoNothing()
      .prepare(),
    dagGet: () => db.select().from(dag).where(eq(dag.dagId, p('dagId'))).prepare(),
    dagList: () => db.select().from(dag).orderBy(asc(dag.dagId)).prepare(),
    dagVersionGet: () => db
      .select({ serialized: dagVersion.serialized })
      .from(dagVersion)
      .where(and(eq(dagVersion.dagId, p('dagId')), eq(dagVersion.version, p('version'))))
      .prepare(),
    dagSetPaused: () => db.update(dag).set({ isPaused: v('paused') }).where(eq(dag.dagId, p('dagId'))).prepare(),
    // SQLite's `IS` is the null-safe equality (IS NOT DISTINCT FROM).
    dagAdvanceNextRunAt: () => db
      .update(dag)
      .set({ nextRunAt: v('next') })
      .where(and(eq(dag.dagId, p('dagId')), sql`${dag.nextRunAt} is ${p('expect')}`))
      .prepare(),
    dagDeleteNotIn: () => db
      .delete(dag)
      .where(sql`${dag.file} not in (select value from json_each(${p('files')}))`)
      .prepare(),

    importErrorSet: () => db
      .insert(importError)
      .values(placeholders(['file', 'error', 'at']))
      .onConflictDoUpdate({ target: importError.file, set: { error: sql`excluded.error`, at: sql`excluded.at` } })
      .prepare(),
    importErrorClear: () => db.delete(importError).where(eq(importError.file, p('file'))).prepare(),
    importErrorList: () => db.select().from(importError).orderBy(asc(importError.file)).prepare(),

    poolSet: () => db
      .insert(pool)
      .values(placeholders(['name', 'slots', 'description']))
      .onConflictDoUpdate({ target: pool.name, set: { slots: sql`excluded.slots`, description: sql`excluded.description` } })
      .prepare(),
    poolDelete: () => db.delete(pool).where(eq(pool.name, p('name'))).prepare(),
    poolList: () => db.select().from(pool).orderBy(asc(pool.name)).prepare(),

    schedulerHeartbeat: () => db
      .insert(scheduler)
      .values(placeholders(['id', 'hostname', 'pid', 'startedAt', 'lastHeartbeatAt']))
      .onConflictDoUpdate({
        target: scheduler.id,
        set: {
          hostname: sql`excluded.hostname`,
          pid: sql`excluded.pid`,
          startedAt: sql`excluded.started_at`,
          lastHeartbeatAt: sql`excluded.last_heartbeat_at`,
        },
      })
      .prepare(),

    // Metrics (Store.metricsSnapshot): four parts in one statement, told apart by `kind`. The
    // task instances through the state index (unfinished states only), runs through theirs.
    metricsSnapshot: () => db
      .select({ kind: sql<string>`'ti'`, name: ti.dagId, state: sql<string>`${ti.state}`, pool: ti.pool, n: sql<number>`count(*)`, slots: sql<number>`sum(${ti.poolSlots})` })
      .from(ti)
      .where(sql`${ti.state} in ('scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule')`)
      .groupBy(ti.dagId, ti.state, ti.pool)
      .unionAll(
        db.select({ kind: sql<string>`'run'`, name: dagRun.dagId, state: sql<string>`${dagRun.state}`, pool: sql<string>`''`, n: sql<number>`count(*)`, slots: sql<number>`0` })
          .from(dagRun)
          .where(sql`${dagRun.state} in ('queued', 'running')`)
          .groupBy(dagRun.dagId, dagRun.state),
      )
      .unionAll(db.select({ kind: sql<string>`'pool'`, name: pool.name, state: sql<string>`''`, pool: sql<string>`''`, n: sql<number>`${pool.slots}`, slots: sql<number>`0` }).from(pool))
      .unionAll(db.select({ kind: sql<string>`'import_error'`, name: sql<string>`''`, state: sql<string>`''`, pool: sql<string>`''`, n: sql<number>`count(*)`, slots: sql<number>`0` }).from(importError))
      .prepare(),
  });
  return Object.assign(built, prepareSqliteCallbackStatements(db), prepareSqliteFeedStatements(db));
}
