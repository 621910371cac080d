/**
 * Statements of the change feed (migrations/0005) and the web UI's reads, prepared with the
 * rest when the store opens. The feed's rows of one batch arrive as one JSON array of tuples
 * and go in with one INSERT ... SELECT over json_each, in array order (ids in that order).
 */
import { and, asc, desc, eq, getTableColumns, gt, sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { UNMAPPED } from '../../dag/types.js';
import { eventsJson } from '../feed.js';
import type { ChangeEventRow } from '../types.js';
import { dagRun, event, scheduler, taskInstance as ti } from './schema.js';

const p = sql.placeholder;

export type SqliteFeedStatements = ReturnType<typeof prepareSqliteFeedStatements>;

export function prepareSqliteFeedStatements(db: BetterSQLite3Database) {
  return {
    // id null: the rowid numbers the rows in array order, after the newest one (never deleted).
    // Each tuple is (kind, dag_id, run_id, task_id, map_index, state, try_number): the event
    // table's columns after (id, at), in the order drizzle lists them (see feed.ts, eventsJson).
    // jsonb_each: the array is parsed once, and each `->>` reads a binary element instead of
    // parsing its text again (an expansion appends 10,000 events at once).
    eventInsertJson: db
      .insert(event)
      .select(sql`select null, ${p('at')}, ${sql.raw([0, 1, 2, 3, 4, 5, 6].map((i) => `value ->> ${i}`).join(', '))} from jsonb_each(${p('rows')})`)
      .prepare(),
    eventsAfter: db.select().from(event).where(gt(event.id, p('after'))).orderBy(asc(event.id)).limit(p('limit')).prepare(),
    eventRange: db.select({ first: sql<number | null>`min(${event.id})`, last: sql<number | null>`max(${event.id})` }).from(event).prepare(),
    // The first event recent enough to keep: a walk up the primary key that stops there, so
    // its cost is the number of old rows (ids grow with time, give or take clock skew).
    eventFirstKept: db.select({ id: event.id }).from(event).where(sql`${event.at} >= ${p('before')}`).orderBy(asc(event.id)).limit(1).prepare(),
    eventDeleteBelow: db.delete(event).where(sql`${event.id} < ${p('below')}`).prepare(),
    // The grid's page of runs: dag_run_logical_date_idx read backwards from the cursor.
    gridRuns: db
      .select()
      .from(dagRun)
      .where(and(eq(dagRun.dagId, p('dagId')), sql`(${dagRun.logicalDate}, ${dagRun.runId}) < (${p('beforeDate')}, ${p('beforeRunId')})`))
      .orderBy(desc(dagRun.logicalDate), desc(dagRun.runId))
      .limit(p('limit'))
      .prepare(),
    // The page's task instances (Store.gridRuns), both through the primary key (dag_id, run_id
    // = each of the page's runs): the unmapped ones as rows, in key order (no sort)... The map
    // index is tested on each index entry, not sought: `+` keeps it out of the plan's choice,
    // which after an ANALYZE would otherwise skip-scan every (dag, run, task) of the table.
    gridTis: db
      .select({ runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, state: ti.state, tryNumber: ti.tryNumber })
      .from(ti)
      .where(and(eq(ti.dagId, p('dagId')), sql`${ti.runId} in (select value from json_each(${p('runIds')}))`, sql`+${ti.mapIndex} = ${UNMAPPED}`))
      .orderBy(asc(ti.runId), asc(ti.taskId))
      .prepare(),
    // ...and the mapped ones counted per (run, task, state) here, not in JavaScript: still a
    // read of each instance's row (state is in no index with the run), but 10,000 instances
    // become a few result rows instead of 10,000 objects.
    gridMapped: db
      .select({ runId: ti.runId, taskId: ti.taskId, state: ti.state, count: sql<number>`count(*)`, maxTryNumber: sql<number>`max(${ti.tryNumber})` })
      .from(ti)
      .where(and(eq(ti.dagId, p('dagId')), sql`${ti.runId} in (select value from json_each(${p('runIds')}))`, sql`+${ti.mapIndex} >= 0`))
      .groupBy(ti.runId, ti.taskId, ti.state)
      .orderBy(asc(ti.runId), asc(ti.taskId), asc(ti.state))
      .prepare(),
    // One task instance (one map index) over the latest runs: runs through
    // dag_run_logical_date_idx, each TI by its primary key.
    taskHistory: db
      .select({ ti: getTableColumns(ti), logicalDate: dagRun.logicalDate })
      .from(dagRun)
      .innerJoin(ti, and(eq(ti.dagId, dagRun.dagId), eq(ti.runId, dagRun.runId), eq(ti.taskId, p('taskId')), eq(ti.mapIndex, p('mapIndex'))))
      .where(eq(dagRun.dagId, p('dagId')))
      .orderBy(desc(dagRun.logicalDate), desc(dagRun.runId))
      .limit(p('limit'))
      .prepare(),
    schedulerList: db.select().from(scheduler).orderBy(desc(scheduler.lastHeartbeatAt)).prepare(),
  };
}

/** In the caller's transaction: a batch's events in one statement. */
export function appendSqliteEvents(s: Pick<SqliteFeedStatements, 'eventInsertJson'>, rows: readonly ChangeEventRow[]): void {
  if (rows.length > 0) s.eventInsertJson.run({ at: Date.now(), rows: eventsJson(rows) });
}
