/**
 * Every statement the PostgreSQL store runs, built once per connection and sent as named
 * prepared statements (PostgreSQL prepares per connection; names are unique within a set).
 * Sets of values arrive as arrays (`= any($n::text[])`), and bulk writes as one array per
 * column unpacked with unnest(), so no SQL is rebuilt per call and a batch costs a handful of
 * round trips however many rows it holds (a round trip is ~0.2 ms here, SQLite's whole
 * statement ~0.005 ms: the reason the dialects' statements differ).
 */
import { and, asc, count, desc, eq, getTableColumns, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { UNMAPPED } from '../../dag/types.js';
import { ACTIVE_RUN_STATES, FINISHED_RUN_STATES, TI_MUTABLE_FIELDS } from '../rows.js';
import { preparePgCallbackStatements } from './callback-statements.js';
import { preparePgFeedStatements } from './feed-statements.js';
import { dag, dagRun, dagVersion, importError, pool, scheduler, taskInstance as ti, xcom } from './schema.js';

const p = sql.placeholder;
/** `sql` around a placeholder: accepted by .set() and .values(); the column types the parameter. */
const v = (name: string): SQL => sql`${p(name)}`;
const inArrayParam = (col: PgColumn, name: string): SQL => sql`${col} = any(${p(name)}::text[])`;
const placeholders = <K extends string>(names: readonly K[]): Record<K, SQL> =>
  Object.fromEntries(names.map((n) => [n, v(n)])) as Record<K, SQL>;

/** Task-instance columns in table order: the column list drizzle writes for insert ... select. */
export const TI_COLUMNS = Object.entries(getTableColumns(ti)) as Array<[keyof typeof ti.$inferSelect, PgColumn]>;

export type PgStatements = ReturnType<typeof preparePgStatements>;

export function preparePgStatements(db: NodePgDatabase) {
  const tiKey = and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId')), eq(ti.taskId, p('taskId')), eq(ti.mapIndex, p('mapIndex')));
  const taskKey = and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId')), eq(ti.taskId, p('taskId')));
  const runKey = and(eq(dagRun.dagId, p('dagId')), eq(dagRun.runId, p('runId')));
  const xcomKey = and(eq(xcom.dagId, p('dagId')), eq(xcom.runId, p('runId')), eq(xcom.taskId, p('taskId')), eq(xcom.mapIndex, p('mapIndex')));
  const name = (n: string) => `kiln_${n}`;
  const tiUnnest = sql.join(
    TI_COLUMNS.map(([key, col]) => sql`${p(key)}::${sql.raw(col.getSQLType())}[]`),
    sql`, `,
  );
  const tiColumnNames = sql.raw(TI_COLUMNS.map(([, col]) => col.name).join(', '));
  /** A column of the unnest() row source `v` in the bulk statements. */
  const fromV = (col: PgColumn): SQL => sql.raw(`v.${col.name}`);

  return {
    ...preparePgCallbackStatements(db, name),
    ...preparePgFeedStatements(db, name),
    // Task instances: the hot path.
    tiCompareAndSet: db
      .update(ti)
      .set(placeholders(TI_MUTABLE_FIELDS))
      .where(and(tiKey, eq(ti.tryNumber, p('expectTryNumber')), inArrayParam(ti.state, 'expectStates')))
      .prepare(name('ti_cas')),
    // The same compare-and-set for many task instances in one statement: one array per
    // column, expectations included (the expected states of each row comma-joined).
    // `ord` says which rows applied. Only for batches that name each TI once: UPDATE ... FROM
    // changes a row at most once, so repeated keys go through tiCompareAndSet in order.
    tiCompareAndSetMany: db
      .update(ti)
      .set(Object.fromEntries(TI_MUTABLE_FIELDS.map((f) => [f, fromV(ti[f])])))
      .from(
        sql`unnest(${tiUnnest}, ${p('expectTryNumbers')}::integer[], ${p('expectStates')}::text[])
          with ordinality as v(${tiColumnNames}, expect_try_number, expect_states, ord)`,
      )
      .where(
        and(
          eq(ti.dagId, fromV(ti.dagId)),
          eq(ti.runId, fromV(ti.runId)),
          eq(ti.taskId, fromV(ti.taskId)),
          eq(ti.mapIndex, fromV(ti.mapIndex)),
          sql`${ti.tryNumber} = v.expect_try_number`,
          sql`${ti.state} = any(string_to_array(v.expect_states, ','))`,
        ),
      )
      .returning({ ord: sql<number>`v.ord`.mapWith(Number) })
      .prepare(name('ti_cas_many')),
    // All heartbeats of a batch in one statement: the keys come as five parallel arrays.
    tiHeartbeats: db
      .update(ti)
      .set({ lastHeartbeatAt: v('at') })
      .where(
        and(
          eq(ti.state, 'running'),
          sql`(${ti.dagId}, ${ti.runId}, ${ti.taskId}, ${ti.mapIndex}, ${ti.tryNumber}) in (select * from unnest(
            ${p('dagIds')}::text[], ${p('runIds')}::text[], ${p('taskIds')}::text[], ${p('mapIndexes')}::integer[], ${p('tryNumbers')}::integer[]))`,
        ),
      )
      .prepare(name('ti_heartbeats')),
    // Every task instance of a run in one statement: one array per column.
    tiInsertMany: db.insert(ti).select(sql`select * from unnest(${tiUnnest})`).prepare(name('ti_insert_many')),
    // An expansion's rows (see write-batch.ts), the same way; a row already there (or being
    // inserted by another scheduler's transaction, which this waits for) is skipped, so the
    // row count says whether every row went in.
    tiInsertManyIfAbsent: db
      .insert(ti)
      .select(sql`select * from unnest(${tiUnnest})`)
      .onConflictDoNothing()
      .prepare(name('ti_insert_many_if_absent')),
    // A mapped task's unexpanded instance, only from the expected states. A second scheduler
    // deleting it at once waits for the first one's row lock, then finds nothing to delete.
    tiDeletePlaceholder: db
      .delete(ti)
      .where(and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId')), eq(ti.taskId, p('taskId')), eq(ti.mapIndex, UNMAPPED), eq(ti.tryNumber, 0), inArrayParam(ti.state, 'expectStates')))
      .prepare(name('ti_delete_placeholder')),
    // Not prepared statements (PostgreSQL prepares none of these): an expansion's savepoint.
    savepoint: () => db.execute(sql.raw('savepoint kiln_expansion')),
    rollbackToSavepoint: () => db.execute(sql.raw('rollback to savepoint kiln_expansion')),
    tisOfRun: db
      .select()
      .from(ti)
      .where(and(eq(ti.dagId, p('dagId')), eq(ti.runId, p('runId'))))
      .orderBy(asc(ti.taskId), asc(ti.mapIndex))
      .prepare(name('tis_of_run')),
    tiGet: db.select().from(ti).where(tiKey).prepare(name('ti_get')),
    // One task's instances (Store.taskInstancesOf, taskStateCounts): the primary-key range
    // (dag_id, run_id, task_id), read in map-index order; LIMIT NULL is no limit.
    tisOfTask: db
      .select()
      .from(ti)
      .where(taskKey)
      .orderBy(asc(ti.mapIndex))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(name('tis_of_task')),
    // The states are a filter on the task's rows, never a read of the state index (written as
    // a function of the column so no plan can use that index): a generic plan cannot tell a
    // rare state from `success`, which most of the table may be in.
    tisOfTaskInStates: db
      .select()
      .from(ti)
      .where(and(taskKey, sql`array_position(${p('states')}::text[], ${ti.state}) is not null`))
      .orderBy(asc(ti.mapIndex))
      .limit(p('limit'))
      .offset(p('offset'))
      .prepare(name('tis_of_task_in_states')),
    tiStateCountsOfTask: db
      .select({ state: ti.state, count: sql<number>`count(*)::integer`, maxMapIndex: sql<number>`max(${ti.mapIndex})` })
      .from(ti)
      .where(taskKey)
      .groupBy(ti.state)
      .prepare(name('ti_state_counts_of_task')),
    // Only running rows whose liveness is older than `before`, never the whole table. The
    // states are literals in the SQL, not parameters: after five executions PostgreSQL may
    // switch a prepared statement to a generic plan, which cannot know that few rows are
    // 'queued' and scanned the whole task_instance table (seen in the soak: one sequential
    // scan of 100,000 rows per tick for the queued-timeout query).
    tiZombies: db
      .select()
      .from(ti)
      .where(and(sql`${ti.state} = 'running'`, lt(sql`coalesce(${ti.lastHeartbeatAt}, ${ti.startedAt}, ${ti.queuedAt})`, p('before'))))
      .limit(p('limit'))
      .prepare(name('ti_zombies')),
    tiStaleQueued: db
      .select()
      .from(ti)
      .where(and(sql`${ti.state} = 'queued'`, lt(ti.queuedAt, p('before'))))
      .limit(p('limit'))
      .prepare(name('ti_stale_queued')),
    // Pool room, in the transaction that queues tries (see WriteBatch). First the pools'
    // rows are locked, in name order (no deadlock between schedulers locking several); then,
    // in a later statement (READ COMMITTED: a new snapshot, taken once the lock is held, so it
    // sees every try the previous holder queued), the slots in use are summed over the
    // queued and running rows only (the state index), never the whole table.
    poolLock: db
      .select({ name: pool.name, slots: pool.slots })
      .from(pool)
      .where(inArrayParam(pool.name, 'names'))
      .orderBy(asc(pool.name))
      .for('update')
      .prepare(name('pool_lock')),
    poolUsed: db
      .select({ name: ti.pool, used: sql<number>`sum(${ti.poolSlots})`.mapWith(Number) })
      .from(ti)
      .where(and(sql`${ti.state} in ('queued', 'running')`, inArrayParam(ti.pool, 'names')))
      .groupBy(ti.pool)
      .prepare(name('pool_used')),

    // Runs.
    runInsert: db
      .insert(dagRun)
      .values(placeholders(['dagId', 'runId', 'runType', 'logicalDate', 'dataIntervalStart', 'dataIntervalEnd', 'state', 'params', 'dagVersion', 'queuedAt', 'startedAt', 'endedAt', 'claimedBy', 'failureReason']))
      .onConflictDoNothing()
      .prepare(name('run_insert')),
    runSet: db
      .update(dagRun)
      .set({
        state: v('state'),
        startedAt: sql`case when ${p('setStartedAt')}::integer = 1 then ${p('startedAt')}::bigint else ${dagRun.startedAt} end`,
        endedAt: sql`case when ${p('setEndedAt')}::integer = 1 then ${p('endedAt')}::bigint else ${dagRun.endedAt} end`,
        failureReason: sql`case when ${p('setFailureReason')}::integer = 1 then ${p('failureReason')}::text else ${dagRun.failureReason} end`,
        claimedBy: sql`case when ${p('setClaimedBy')}::integer = 1 then ${p('claimedBy')}::text else ${dagRun.claimedBy} end`,
      })
      .where(and(runKey, inArrayParam(dagRun.state, 'expectStates')))
      .prepare(name('run_set')),
    runGet: db.select().from(dagRun).where(runKey).prepare(name('run_get')),
    // The latest successful run before a logical date (dag_run_logical_date_idx, read backwards).
    runPrevSuccess: db
      .select({ dataIntervalStart: dagRun.dataIntervalStart, dataIntervalEnd: dagRun.dataIntervalEnd })
      .from(dagRun)
      .where(and(eq(dagRun.dagId, p('dagId')), eq(dagRun.state, 'success'), lt(dagRun.logicalDate, p('before'))))
      .orderBy(desc(dagRun.logicalDate))
      .limit(1)
      .prepare(name('run_prev_success')),
    // Starting a run under maxActiveRuns: the DAG's row is locked first, then (a later
    // statement, so a snapshot that sees the run the previous holder started) the run is
    // started if fewer than maxActiveRuns runs of the DAG are running.
    dagLock: db.select({ dagId: dag.dagId }).from(dag).where(eq(dag.dagId, p('dagId'))).for('update').prepare(name('dag_lock')),
    runStart: db
      .update(dagRun)
      .set({ state: 'running', startedAt: sql`${p('now')}::bigint` })
      .where(
        and(
          runKey,
          eq(dagRun.state, 'queued'),
          eq(dagRun.claimedBy, p('schedulerId')),
          sql`(select count(*) from ${dagRun} r where r.dag_id = ${p('dagId')} and r.state = 'running') < ${p('maxActiveRuns')}::integer`,
        ),
      )
      .prepare(name('run_start')),
    runCountActive: db
      .select({ n: count() })
      .from(dagRun)
      .where(and(eq(dagRun.dagId, p('dagId')), inArray(dagRun.state, [...ACTIVE_RUN_STATES])))
      .prepare(name('run_count_active')),
    // Picks and claims up to `limit` active runs held by no live scheduler, in one statement.
    // FOR UPDATE SKIP LOCKED: a run another scheduler is claiming right now is skipped, not
    // waited for; if that claim commits first, the row is re-checked against its new version
    // (now held by a live scheduler) and dropped. So two schedulers never claim one run.
    // Runs the caller already holds are left alone (runsHeldBy reads them).
    runClaim: db
      .update(dagRun)
      .set({ claimedBy: v('schedulerId') })
      .where(
        sql`(${dagRun.dagId}, ${dagRun.runId}) in (select r.dag_id, r.run_id from ${dagRun} r
          where r.state in ${[...ACTIVE_RUN_STATES]}
            and (r.claimed_by is null or r.claimed_by <> ${p('schedulerId')} and not exists (
              select 1 from ${scheduler} s where s.id = r.claimed_by and s.last_heartbeat_at >= ${p('deadBefore')}::bigint))
          order by r.queued_at, r.dag_id, r.run_id
          limit ${p('limit')}
          for update of r skip locked)`,
      )
      
      .prepare(name('run_claim')),
    runsHeldBy: db
      .select()
      .from(dagRun)
      .where(and(eq(dagRun.claimedBy, p('schedulerId')), inArray(dagRun.state, [...ACTIVE_RUN_STATES])))
      .orderBy(asc(dagRun.queuedAt), asc(dagRun.dagId), asc(dagRun.runId))
      .prepare(name('runs_held_by')),
    runRelease: db
      .update(dagRun)
      .set({ claimedBy: null })
      .where(and(eq(dagRun.claimedBy, p('schedulerId')), inArray(dagRun.state, [...ACTIVE_RUN_STATES])))
      .prepare(name('run_release')),

    // Retention: finished runs that ended before `before`, oldest first, after the keyset
    // cursor. One range scan of dag_run_ended_at_idx (the cursor continues inside it); the
    // counts are primary-key prefix lookups per selected run, never a task-instance scan.
    runsExpired: db
      .select({
        dagId: dagRun.dagId,
        runId: dagRun.runId,
        endedAt: sql<number>`${dagRun.endedAt}`.mapWith(Number),
        taskInstances: sql<number>`(select count(*) from ${ti} t where t.dag_id = "dag_run"."dag_id" and t.run_id = "dag_run"."run_id")`.mapWith(Number),
        xcoms: sql<number>`(select count(*) from ${xcom} x where x.dag_id = "dag_run"."dag_id" and x.run_id = "dag_run"."run_id")`.mapWith(Number),
      })
      .from(dagRun)
      .where(
        and(
          lt(dagRun.endedAt, p('before')),
          inArray(dagRun.state, [...FINISHED_RUN_STATES]),
          sql`(${dagRun.endedAt}, ${dagRun.dagId}, ${dagRun.runId}) > (${p('afterEndedAt')}::bigint, ${p('afterDagId')}::text, ${p('afterRunId')}::text)`,
        ),
      )
      .orderBy(asc(dagRun.endedAt), asc(dagRun.dagId), asc(dagRun.runId))
      .limit(p('limit'))
      .prepare(name('runs_expired')),
    // The same runs, locked for deletion. SKIP LOCKED: a run another cleaner has taken, or
    // one an operator is changing, is left out rather than waited for. A row changed since
    // the statement began is re-checked against its new version (cleared: no longer finished).
    runsExpiredLock: db
      .select({ dagId: dagRun.dagId, runId: dagRun.runId, endedAt: sql<number>`${dagRun.endedAt}`.mapWith(Number) })
      .from(dagRun)
      .where(and(lt(dagRun.endedAt, p('before')), inArray(dagRun.state, [...FINISHED_RUN_STATES])))
      .orderBy(asc(dagRun.endedAt), asc(dagRun.dagId), asc(dagRun.runId))
      .limit(p('limit'))
      .for('update', { skipLocked: true })
      .prepare(name('runs_expired_lock')),
    // Locks every task instance of the given runs and returns the runs with one it could not
    // lock: `tasks clear` / `tasks mark` write task instances first and the run second, so a
    // cleaner holding the run must not then wait for a task instance (a deadlock); it skips
    // that run instead.
    runsWithBusyTis: db
      .selectDistinct({ dagId: ti.dagId, runId: ti.runId })
      .from(ti)
      .where(
        sql`(${ti.dagId}, ${ti.runId}) in (select * from unnest(${p('dagIds')}::text[], ${p('runIds')}::text[]))
          and not exists (select 1 from ${ti} l
            where l.dag_id = "task_instance"."dag_id" and l.run_id = "task_instance"."run_id" and l.task_id = "task_instance"."task_id"
              and l.map_index = "task_instance"."map_index"
            for update skip locked)`,
      )
      .prepare(name('runs_with_busy_tis')),
    tisDeleteOfRuns: db
      .delete(ti)
      .where(sql`(${ti.dagId}, ${ti.runId}) in (select * from unnest(${p('dagIds')}::text[], ${p('runIds')}::text[]))`)
      .prepare(name('tis_delete_of_runs')),
    xcomsDeleteOfRuns: db
      .delete(xcom)
      .where(sql`(${xcom.dagId}, ${xcom.runId}) in (select * from unnest(${p('dagIds')}::text[], ${p('runIds')}::text[]))`)
      .prepare(name('xcoms_delete_of_runs')),
    runsDelete: db
      .delete(dagRun)
      .where(sql`(${dagRun.dagId}, ${dagRun.runId}) in (select * from unnest(${p('dagIds')}::text[], ${p('runIds')}::text[]))`)
      .prepare(name('runs_delete')),

    // XCom.
    // Every XCom of a batch in one statement (keys must be unique within it). The arrays are
    // in the table's column order: drizzle lists every column of xcom.
    xcomUpsertMany: db
      .insert(xcom)
      .select(sql`select * from unnest(${p('dagIds')}::text[], ${p('runIds')}::text[], ${p('taskIds')}::text[], ${p('mapIndexes')}::integer[], ${p('values')}::text[])`)
      .onConflictDoUpdate({ target: [xcom.dagId, xcom.runId, xcom.taskId, xcom.mapIndex], set: { value: sql`excluded.value` } })
      .prepare(name('xcom_upsert_many')),
    xcomGet: db.select({ value: xcom.value }).from(xcom).where(xcomKey).prepare(name('xcom_get')),
    // Every XCom of one task in a run: a primary-key prefix range, in map-index order.
    xcomsOfTask: db
      .select({ mapIndex: xcom.mapIndex, value: xcom.value })
      .from(xcom)
      .where(and(eq(xcom.dagId, p('dagId')), eq(xcom.runId, p('runId')), eq(xcom.taskId, p('taskId'))))
      .orderBy(asc(xcom.mapIndex))
      .prepare(name('xcoms_of_task')),

    // DAGs.
    dagUpsert: db
      .insert(dag)
      .values({ ...placeholders(['dagId', 'file', 'version', 'serialized', 'nextRunAt', 'updatedAt']), isPaused: false })
      .onConflictDoUpdate({
        target: dag.dagId,
        set: {
          file: sql`excluded.file`,
          version: sql`excluded.version`,
          serialized: sql`excluded.serialized`,
          updatedAt: sql`excluded.updated_at`,
          nextRunAt: sql`case when ${p('setNextRunAt')}::integer = 1 then excluded.next_run_at else ${dag.nextRunAt} end`,
        },
      })
      .prepare(name('dag_upsert')),
    dagVersionInsert: db
      .insert(dagVersion)
      .values(placeholders(['dagId', 'version', 'serialized', 'createdAt']))
      .onConflictDoNothing()
      .prepare(name('dag_version_insert')),
    dagGet: db.select().from(dag).where(eq(dag.dagId, p('dagId'))).prepare(name('dag_get')),
    dagList: db.select().from(dag).orderBy(asc(dag.dagId)).prepare(name('dag_list')),
    dagVersionGet: db
      .select({ serialized: dagVersion.serialized })
      .from(dagVersion)
      .where(and(eq(dagVersion.dagId, p('dagId')), eq(dagVersion.version, p('version'))))
      .prepare(name('dag_version_get')),
    dagSetPaused: db.update(dag).set({ isPaused: v('paused') }).where(eq(dag.dagId, p('dagId'))).prepare(name('dag_set_paused')),
    dagAdvanceNextRunAt: db
      .update(dag)
      .set({ nextRunAt: v('next') })
      .where(and(eq(dag.dagId, p('dagId')), sql`${dag.nextRunAt} is not distinct from ${p('expect')}::bigint`))
      .prepare(name('dag_advance_next_run_at')),
    dagDeleteNotIn: db
      .delete(dag)
      .where(sql`${dag.file} <> all(${p('files')}::text[])`)
      .prepare(name('dag_delete_not_in')),

    importErrorSet: db
      .insert(importError)
      .values(placeholders(['file', 'error', 'at']))
      .onConflictDoUpdate({ target: importError.file, set: { error: sql`excluded.error`, at: sql`excluded.at` } })
      .prepare(name('import_error_set')),
    importErrorClear: db.delete(importError).where(eq(importError.file, p('file'))).prepare(name('import_error_clear')),
    importErrorList: db.select().from(importError).orderBy(asc(importError.file)).prepare(name('import_error_list')),

    poolSet: db
      .insert(pool)
      .values(placeholders(['name', 'slots', 'description']))
      .onConflictDoUpdate({ target: pool.name, set: { slots: sql`excluded.slots`, description: sql`excluded.description` } })
      .prepare(name('pool_set')),
    poolDelete: db.delete(pool).where(eq(pool.name, p('name'))).prepare(name('pool_delete')),
    poolList: db.select().from(pool).orderBy(asc(pool.name)).prepare(name('pool_list')),

    schedulerHeartbeat: db
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
      .prepare(name('scheduler_heartbeat')),

    // Metrics (Store.metricsSnapshot): four parts in one statement, told apart by `kind`. The
    // states are literals (see tiZombies): the task instances come through the state index.
    metricsSnapshot: db
      .select({ kind: sql<string>`'ti'::text`, name: ti.dagId, state: sql<string>`${ti.state}`, pool: ti.pool, n: sql<number>`count(*)::integer`, slots: sql<number>`sum(${ti.poolSlots})::integer` })
      .from(ti)
      .where(sql`${ti.state} in ('scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule')`)
      .groupBy(ti.dagId, ti.state, ti.pool)
      .unionAll(
        db.select({ kind: sql<string>`'run'::text`, name: dagRun.dagId, state: sql<string>`${dagRun.state}`, pool: sql<string>`''::text`, n: sql<number>`count(*)::integer`, slots: sql<number>`0` })
          .from(dagRun)
          .where(sql`${dagRun.state} in ('queued', 'running')`)
          .groupBy(dagRun.dagId, dagRun.state),
      )
      .unionAll(db.select({ kind: sql<string>`'pool'::text`, name: pool.name, state: sql<string>`''::text`, pool: sql<string>`''::text`, n: sql<number>`${pool.slots}`, slots: sql<number>`0` }).from(pool))
      .unionAll(db.select({ kind: sql<string>`'import_error'::text`, name: sql<string>`''::text`, state: sql<string>`''::text`, pool: sql<string>`''::text`, n: sql<number>`count(*)::integer`, slots: sql<number>`0` }).from(importError))
      .prepare(name('metrics_snapshot')),
  };
}
