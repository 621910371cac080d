/**
 * Statements of the owed-callback table (see scheduler/callbacks.ts), prepared with the rest
 * per connection. A callback is claimed like a run: unowned, or owned by a scheduler whose
 * heartbeat is older than `deadBefore`; SKIP LOCKED keeps two schedulers off the same one.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { callbackRequest as cb, scheduler } from './schema.js';

const p = sql.placeholder;

export function preparePgCallbackStatements(db: NodePgDatabase, name: (n: string) => string) {
  const columns = ['id', 'dagId', 'runId', 'taskId', 'mapIndex', 'tryNumber', 'kind', 'state', 'reason', 'error', 'exitCode', 'signal', 'createdAt', 'owner'] as const;
  return {
    callbackInsert: db
      .insert(cb)
      .values(Object.fromEntries(columns.map((c) => [c, sql`${p(c)}`])) as Record<(typeof columns)[number], ReturnType<typeof sql>>)
      .onConflictDoNothing()
      .prepare(name('callback_insert')),
    callbacksDelete: db.delete(cb).where(sql`${cb.id} = any(${p('ids')}::text[])`).prepare(name('callbacks_delete')),
    callbackClaim: db
      .update(cb)
      .set({ owner: sql`${p('owner')}` })
      .where(
        sql`${cb.id} in (select c.id from ${cb} c
          where c.owner is null or c.owner <> ${p('owner')} and not exists (
            select 1 from ${scheduler} s where s.id = c.owner and s.last_heartbeat_at >= ${p('deadBefore')}::bigint)
          order by c.created_at, c.id
          limit ${p('limit')}
          for update of c skip locked)`,
      )
      .prepare(name('callback_claim')),
    callbacksHeldBy: db.select().from(cb).where(eq(cb.owner, p('owner'))).orderBy(asc(cb.createdAt), asc(cb.id)).prepare(name('callbacks_held_by')),
    callbacksOfRun: db.select().from(cb).where(and(eq(cb.dagId, p('dagId')), eq(cb.runId, p('runId')))).orderBy(asc(cb.createdAt), asc(cb.id)).prepare(name('callbacks_of_run')),
    callbackCount: db.select({ n: sql<number>`count(*)`.mapWith(Number) }).from(cb).prepare(name('callback_count')),
    callbackRelease: db.update(cb).set({ owner: null }).where(eq(cb.owner, p('owner'))).prepare(name('callback_release')),
    callbacksDeleteOfRuns: db
      .delete(cb)
      .where(sql`(${cb.dagId}, ${cb.runId}) in (select * from unnest(${p('dagIds')}::text[], ${p('runIds')}::text[]))`)
      .prepare(name('callbacks_delete_of_runs')),
  };
}
