/** The PostgreSQL store's backfill and by-date queries (not on the hot path: built per call). */
import { and, asc, eq, gte, isNull, lte, or, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { toBackfillRecord, toBackfillRow } from '../backfill-rows.js';
import { toRunRow } from '../rows.js';
import type { BackfillRow, RunRow } from '../types.js';
import { backfill, dagRun, scheduler } from './schema.js';

export function pgBackfills(db: NodePgDatabase) {
  return {
    async listRunsByLogicalDate(dagId: string, from: number, to: number): Promise<RunRow[]> {
      const rows = await db.select().from(dagRun).where(and(eq(dagRun.dagId, dagId), gte(dagRun.logicalDate, from), lte(dagRun.logicalDate, to))).orderBy(asc(dagRun.logicalDate), asc(dagRun.queuedAt));
      return rows.map(toRunRow);
    },
    async create(row: BackfillRow): Promise<void> {
      await db.insert(backfill).values(toBackfillRecord(row));
    },
    async get(id: string): Promise<BackfillRow | undefined> {
      const [r] = await db.select().from(backfill).where(eq(backfill.id, id));
      return r === undefined ? undefined : toBackfillRow(r);
    },
    async listForSchedulers(deadBefore: number): Promise<BackfillRow[]> {
      const driverAlive = sql`exists (select 1 from ${scheduler} s where s.id = ${backfill.driver} and s.last_heartbeat_at >= ${deadBefore}::bigint)`;
      const rows = await db.select().from(backfill).where(and(eq(backfill.state, 'running'), or(isNull(backfill.driver), sql`not ${driverAlive}`))).orderBy(asc(backfill.createdAt));
      return rows.map(toBackfillRow);
    },
    async advance(id: string, expectCursor: number, next: { cursor: number; state: BackfillRow['state']; driver: string | null }): Promise<boolean> {
      const res = await db.update(backfill).set(next).where(and(eq(backfill.id, id), eq(backfill.cursor, expectCursor)));
      return (res.rowCount ?? 0) === 1;
    },
  };
}
