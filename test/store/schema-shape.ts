/**
 * The shape of kiln's tables (columns, types, nullability, primary key, indexes) as the drizzle
 * schemas describe them and as a migrated database has them: schema.test.ts compares the two
 * for a fresh database, migration-0008.test.ts for one upgraded from an older migration.
 */
import type Database from 'better-sqlite3';
import { getTableConfig as pgTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteTableConfig, type SQLiteTable } from 'drizzle-orm/sqlite-core';
import type pg from 'pg';
import * as pgSchema from '../../src/store/postgres/schema.js';
import * as sqliteSchema from '../../src/store/sqlite/schema.js';

export interface Shape {
  columns: Record<string, { type: string; notNull: boolean }>;
  /** Column names in key order. */
  primaryKey: string[];
  /** Secondary indexes (not the primary key's), sorted. */
  indexes: string[];
}

function keyOf(cfg: { primaryKeys: Array<{ columns: Array<{ name: string }> }>; columns: Array<{ name: string; primary: boolean }> }): string[] {
  return cfg.primaryKeys[0]?.columns.map((c) => c.name) ?? cfg.columns.filter((c) => c.primary).map((c) => c.name);
}

/** What the SQLite drizzle schema says, by table name. */
export function expectedSqliteShapes(): Record<string, Shape> {
  return Object.fromEntries(
    (Object.values(sqliteSchema) as SQLiteTable[]).map((table) => {
      const cfg = sqliteTableConfig(table);
      return [cfg.name, {
        columns: Object.fromEntries(cfg.columns.map((c) => [c.name, { type: c.getSQLType().toUpperCase(), notNull: c.notNull }])),
        primaryKey: keyOf(cfg),
        indexes: cfg.indexes.map((i) => i.config.name).sort(),
      }];
    }),
  );
}

/** What a SQLite database has, for the same tables. */
export function sqliteShapes(db: Database.Database): Record<string, Shape> {
  return Object.fromEntries(
    Object.keys(expectedSqliteShapes()).map((name) => {
      const cols = db.prepare(`PRAGMA table_info(${name})`).all() as Array<{ name: string; type: string; notnull: number; pk: number }>;
      const idx = db.prepare(`PRAGMA index_list(${name})`).all() as Array<{ name: string; origin: string }>;
      return [name, {
        columns: Object.fromEntries(cols.map((c) => [c.name, { type: c.type, notNull: c.notnull === 1 }])),
        primaryKey: cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name),
        indexes: idx.filter((i) => i.origin === 'c').map((i) => i.name).sort(),
      }];
    }),
  );
}

/** What the PostgreSQL drizzle schema says, by table name. */
export function expectedPgShapes(): Record<string, Shape> {
  return Object.fromEntries(
    (Object.values(pgSchema) as PgTable[]).map((table) => {
      const cfg = pgTableConfig(table);
      return [cfg.name, {
        columns: Object.fromEntries(cfg.columns.map((c) => [c.name, { type: c.getSQLType(), notNull: c.notNull }])),
        primaryKey: keyOf(cfg),
        indexes: cfg.indexes.map((i) => i.config.name!).sort(),
      }];
    }),
  );
}

/** What a PostgreSQL database has in the client's current schema, for the same tables. */
export async function pgShapes(client: pg.Client): Promise<Record<string, Shape>> {
  const out: Record<string, Shape> = {};
  for (const name of Object.keys(expectedPgShapes())) {
    const cols = await client.query<{ column_name: string; data_type: string; is_nullable: string }>(
      'SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
      [name],
    );
    const key = await client.query<{ column_name: string }>(
      `SELECT k.column_name FROM information_schema.table_constraints c
         JOIN information_schema.key_column_usage k ON k.constraint_schema = c.constraint_schema AND k.constraint_name = c.constraint_name
        WHERE c.table_schema = current_schema() AND c.table_name = $1 AND c.constraint_type = 'PRIMARY KEY'
        ORDER BY k.ordinal_position`,
      [name],
    );
    const idx = await client.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname NOT LIKE '%_pkey'",
      [name],
    );
    out[name] = {
      columns: Object.fromEntries(cols.rows.map((c) => [c.column_name, { type: c.data_type, notNull: c.is_nullable === 'NO' }])),
      primaryKey: key.rows.map((k) => k.column_name),
      indexes: idx.rows.map((i) => i.indexname).sort(),
    };
  }
  return out;
}
