/** The SQLite store's backfill and by-date queries (not on the hot path: built per call). */
import { and, asc, eq, gte, isNull, lte, or, sql } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { toBackfillRecord, toBackfillRow } from '../backfill-rows.js';
import { toRunRow } from '../rows.js';
import type { BackfillRow, RunRow } from '../types.js';
import { backfill, dagRun, scheduler } from './schema.js';

export function sqliteBackfills(db: BetterSQLite3Database) {
  return {
    listRunsByLogicalDate(dagId: string, from: number, to: number): RunRow[] {
      return db.select().from(dagRun).where(and(eq(dagRun.dagId, dagId), gte(dagRun.logicalDate, from), lte(dagRun.logicalDate, to))).orderBy(asc(dagRun.logicalDate), asc(dagRun.queuedAt)).all().map(toRunRow);
    },
    create(row: BackfillRow): void {
      db.insert(backfill).values(toBackfillRecord(row)).run();
    },
    get(id: string): BackfillRow | undefined {
      const r = db.select().from(backfill).where(eq(backfill.id, id)).get();
      return r === undefined ? undefined : toBackfillRow(r);
    },
    listForSchedulers(deadBefore: number): BackfillRow[] {
      const driverAlive = sql`exists (select 1 from ${scheduler} s where s.id = ${backfill.driver} and s.last_heartbeat_at >= ${deadBefore})`;
      return db.select().from(backfill).where(and(eq(backfill.state, 'running'), or(isNull(backfill.driver), sql`not ${driverAlive}`))).orderBy(asc(backfill.createdAt)).all().map(toBackfillRow);
    },
    advance(id: string, expectCursor: number, next: { cursor: number; state: BackfillRow['state']; driver: string | null }): boolean {
      return db.update(backfill).set(next).where(and(eq(backfill.id, id), eq(backfill.cursor, expectCursor))).run().changes === 1;
    },
  };
}
