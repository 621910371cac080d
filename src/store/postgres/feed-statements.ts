/**
 * Statements of the change feed (migrations/0005) and the web UI's reads, prepared with the
 * rest on each connection. A batch's events go in with one INSERT ... SELECT over unnest()
 * (one array per column, in order). Ids must grow in commit order, or a reader that saw id
 * n+1 commit first would skip id n for good: so the insert first takes a transaction-level
 * advisory lock (one per schema), held until COMMIT. The insert is the last statement of
 * every transaction that appends, so the lock is held for about one round trip, and an
 * appender holding it waits for nothing else (no deadlock).
 */
import { and, asc, desc, eq, getTableColumns, gt, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { UNMAPPED } from '../../dag/types.js';
import { dagRun, event, scheduler, taskInstance as ti } from './schema.js';

const p = sql.placeholder;

export type PgFeedStatements = ReturnType<typeof preparePgFeedStatements>;

/** The NOTIFY channel of the change feed; the payload is the schema (Store.watchEvents). */
export const FEED_CHANNEL = 'kiln_feed';

export function preparePgFeedStatements(db: NodePgDatabase, name: (n: string) => string) {
  return {
    // The selected columns follow the event table's order as drizzle lists them (schema.ts).
    // The lock is a one-row subquery joined to the rows: whichever side the plan puts it,
    // it is taken before the first joined row, and so before the first id (nextval, in the
    // projection above the join) is drawn. The same subquery notifies the feed's listeners
    // (delivered at COMMIT; repeats within a transaction are folded into one).
    eventInsertMany: db
      .insert(event)
      .select(
        sql`select nextval(pg_get_serial_sequence('event', 'id')), u.at, u.kind, u.dag_id, u.run_id, u.task_id, u.map_index, u.state, u.try_number
          from (select pg_advisory_xact_lock(hashtext('kiln:event:' || current_schema())), pg_notify(${sql.raw(`'${FEED_CHANNEL}'`)}, current_schema())) feed_lock,
               unnest(${p('ats')}::bigint[], ${p('kinds')}::text[], ${p('dagIds')}::text[], ${p('runIds')}::text[],
                      ${p('taskIds')}::text[], ${p('mapIndexes')}::integer[], ${p('states')}::text[], ${p('tryNumbers')}::integer[])
               with ordinality as u(at, kind, dag_id, run_id, task_id, map_index, state, try_number, ord)
          order by u.ord`,
      )
      .prepare(name('event_insert_many')),
    eventsAfter: db.select().from(event).where(gt(event.id, sql`${p('after')}::bigint`)).orderBy(asc(event.id)).limit(p('limit')).prepare(name('events_after')),
    eventRange: db
      .select({ first: sql<number | null>`min(${event.id})`.mapWith(Number), last: sql<number | null>`max(${event.id})`.mapWith(Number) })
      .from(event)
      .prepare(name('event_range')),
    // The first event recent enough to keep: a walk up the primary key that stops there.
    eventFirstKept: db
      .select({ id: event.id })
      .from(event)
      .where(sql`${event.at} >= ${p('before')}::bigint`)
      .orderBy(asc(event.id))
      .limit(1)
      .prepare(name('event_first_kept')),
    eventDeleteBelow: db.delete(event).where(sql`${event.id} < ${p('below')}::bigint`).prepare(name('event_delete_below')),
    // The grid's page of runs: dag_run_logical_date_idx read backwards from the cursor.
    gridRuns: db
      .select()
      .from(dagRun)
      .where(and(eq(dagRun.dagId, p('dagId')), sql`(${dagRun.logicalDate}, ${dagRun.runId}) < (${p('beforeDate')}::bigint, ${p('beforeRunId')}::text)`))
      .orderBy(desc(dagRun.logicalDate), desc(dagRun.runId))
      .limit(p('limit'))
      .prepare(name('grid_runs')),
    // The page's task instances (Store.gridRuns), both through the primary key (dag_id, run_id
    // = any of the page's runs, map_index checked in the index): the unmapped ones as rows...
    // Sorted in byte order (COLLATE "C") whatever the database's collation: the order
    // GridPageRead promises, which the grid merges the two lists by.
    gridTis: db
      .select({ runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, state: ti.state, tryNumber: ti.tryNumber })
      .from(ti)
      .where(and(eq(ti.dagId, p('dagId')), sql`${ti.runId} = any(${p('runIds')}::text[])`, eq(ti.mapIndex, UNMAPPED)))
      .orderBy(sql`${ti.runId} collate "C"`, sql`${ti.taskId} collate "C"`)
      .prepare(name('grid_tis')),
    // ...and the mapped ones counted per (run, task, state) here, not in JavaScript: 10,000
    // instances become a few result rows instead of 10,000 sent and parsed.
    gridMapped: db
      .select({ runId: ti.runId, taskId: ti.taskId, state: ti.state, count: sql<number>`count(*)::integer`, maxTryNumber: sql<number>`max(${ti.tryNumber})` })
      .from(ti)
      .where(and(eq(ti.dagId, p('dagId')), sql`${ti.runId} = any(${p('runIds')}::text[])`, sql`${ti.mapIndex} >= 0`))
      .groupBy(ti.runId, ti.taskId, ti.state)
      .orderBy(sql`${ti.runId} collate "C"`, sql`${ti.taskId} collate "C"`, ti.state)
      .prepare(name('grid_mapped')),
    // One task instance (one map index) over the latest runs: runs through
    // dag_run_logical_date_idx, each TI by its primary key.
    taskHistory: db
      .select({ ti: getTableColumns(ti), logicalDate: dagRun.logicalDate })
      .from(dagRun)
      .innerJoin(ti, and(eq(ti.dagId, dagRun.dagId), eq(ti.runId, dagRun.runId), eq(ti.taskId, p('taskId')), eq(ti.mapIndex, p('mapIndex'))))
      .where(eq(dagRun.dagId, p('dagId')))
      .orderBy(desc(dagRun.logicalDate), desc(dagRun.runId))
      .limit(p('limit'))
      .prepare(name('task_history')),
    schedulerList: db.select().from(scheduler).orderBy(desc(scheduler.lastHeartbeatAt)).prepare(name('scheduler_list')),
  };
}
