/**
 * The hand-written migrations must create exactly the tables, columns and indexes the drizzle
 * schemas describe: a drift would only show up as a failing statement at run time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { getTableConfig as pgTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteTableConfig, type SQLiteTable } from 'drizzle-orm/sqlite-core';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';
import * as pgSchema from '../../src/store/postgres/schema.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import * as sqliteSchema from '../../src/store/sqlite/schema.js';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import { createTestSchema, postgresTestUrl } from '../helpers/postgres.js';

interface Shape {
  columns: Record<string, { type: string; notNull: boolean }>;
  indexes: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite migrations match the drizzle schema', () => {
  test('tables, columns, types, nullability and indexes', async () => {
    const path = join(dir, 'kiln.db');
    const store = await openSqliteStore(path);
    await store.migrate();
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      for (const table of Object.values(sqliteSchema) as SQLiteTable[]) {
        const cfg = sqliteTableConfig(table);
        const expected: Shape = {
          columns: Object.fromEntries(cfg.columns.map((c) => [c.name, { type: c.getSQLType().toUpperCase(), notNull: c.notNull }])),
          indexes: cfg.indexes.map((i) => i.config.name).sort(),
        };
        const cols = db.prepare(`PRAGMA table_info(${cfg.name})`).all() as Array<{ name: string; type: string; notnull: number }>;
        const idx = db.prepare(`PRAGMA index_list(${cfg.name})`).all() as Array<{ name: string; origin: string }>;
        const actual: Shape = {
          columns: Object.fromEntries(cols.map((c) => [c.name, { type: c.type, notNull: c.notnull === 1 }])),
          indexes: idx.filter((i) => i.origin === 'c').map((i) => i.name).sort(),
        };
        expect(actual, cfg.name).toEqual(expected);
      }
    } finally {
      db.close();
    }
  });
});

const pgUrl = await postgresTestUrl('PostgreSQL schema tests');

describe.skipIf(pgUrl === null)('postgres migrations match the drizzle schema', () => {
  test('tables, columns, types, nullability and indexes', async () => {
    const target = await createTestSchema(pgUrl!, 'kiln_schema');
    const store = await openPostgresStore(target.url);
    const client = new pg.Client(parsePostgresUrl(target.url).pool);
    try {
      await store.migrate();
      await client.connect();
      for (const table of Object.values(pgSchema) as PgTable[]) {
        const cfg = pgTableConfig(table);
        const expected: Shape = {
          columns: Object.fromEntries(cfg.columns.map((c) => [c.name, { type: c.getSQLType(), notNull: c.notNull }])),
          indexes: cfg.indexes.map((i) => i.config.name!).sort(),
        };
        const cols = await client.query<{ column_name: string; data_type: string; is_nullable: string }>(
          'SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
          [cfg.name],
        );
        const idx = await client.query<{ indexname: string }>(
          "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname NOT LIKE '%_pkey'",
          [cfg.name],
        );
        const actual: Shape = {
          columns: Object.fromEntries(cols.rows.map((c) => [c.column_name, { type: c.data_type, notNull: c.is_nullable === 'NO' }])),
          indexes: idx.rows.map((i) => i.indexname).sort(),
        };
        expect(actual, cfg.name).toEqual(expected);
      }
    } finally {
      await client.end().catch(() => {});
      await store.close();
      await target.drop();
    }
  });
});
