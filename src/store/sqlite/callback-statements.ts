/**
 * Statements of the owed-callback table (see scheduler/callbacks.ts), prepared with the rest
 * when the store opens. A callback is claimed like a run: unowned, or owned by a scheduler
 * whose heartbeat is older than `deadBefore`.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { callbackRequest as cb, scheduler } from './schema.js';

const p = sql.placeholder;

export type SqliteCallbackStatements = ReturnType<typeof prepareSqliteCallbackStatements>;

export function prepareSqliteCallbackStatements(db: BetterSQLite3Database) {
  const columns = ['id', 'dagId', 'runId', 'taskId', 'mapIndex', 'tryNumber', 'kind', 'state', 'reason', 'error', 'exitCode', 'signal', 'createdAt', 'owner'] as const;
  return {
    callbackInsert: db
      .insert(cb)
      .values(Object.fromEntries(columns.map((c) => [c, sql`${p(c)}`])) as Record<(typeof columns)[number], ReturnType<typeof sql>>)
      .onConflictDoNothing()
      .prepare(),
    callbackDelete: db.delete(cb).where(eq(cb.id, p('id'))).prepare(),
    callbackClaim: db
      .update(cb)
      .set({ owner: sql`${p('owner')}` })
      .where(
        sql`${cb.id} in (select c.id from ${cb} c
          where c.owner is null or c.owner <> ${p('owner')} and not exists (
            select 1 from ${scheduler} s where s.id = c.owner and s.last_heartbeat_at >= ${p('deadBefore')})
          order by c.created_at, c.id
          limit ${p('limit')})`,
      )
      .prepare(),
    callbacksHeldBy: db.select().from(cb).where(eq(cb.owner, p('owner'))).orderBy(asc(cb.createdAt), asc(cb.id)).prepare(),
    callbacksOfRun: db.select().from(cb).where(and(eq(cb.dagId, p('dagId')), eq(cb.runId, p('runId')))).orderBy(asc(cb.createdAt), asc(cb.id)).prepare(),
    callbackCount: db.select({ n: sql<number>`count(*)` }).from(cb).prepare(),
    callbackRelease: db.update(cb).set({ owner: null }).where(eq(cb.owner, p('owner'))).prepare(),
    callbacksDeleteOfRun: db.delete(cb).where(and(eq(cb.dagId, p('dagId')), eq(cb.runId, p('runId')))).prepare(),
  };
}
