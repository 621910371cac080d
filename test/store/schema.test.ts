/**
 * The hand-written migrations must create exactly the tables, columns, primary keys and
 * indexes the drizzle schemas describe: a drift would only show up as a failing statement
 * (or a missing conflict target) at run time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import { openSqliteStore } from '../../src/store/sqlite/store.js';
import { createTestSchema, postgresTestUrl } from '../helpers/postgres.js';
import { expectedPgShapes, expectedSqliteShapes, pgShapes, sqliteShapes } from './schema-shape.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite migrations match the drizzle schema', () => {
  test('tables, columns, types, nullability, primary keys and indexes', async () => {
    const path = join(dir, 'kiln.db');
    const store = await openSqliteStore(path);
    await store.migrate();
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      const actual = sqliteShapes(db);
      for (const [name, shape] of Object.entries(expectedSqliteShapes())) expect(actual[name], name).toEqual(shape);
    } finally {
      db.close();
    }
  });
});

const pgUrl = await postgresTestUrl('PostgreSQL schema tests');

describe.skipIf(pgUrl === null)('postgres migrations match the drizzle schema', () => {
  test('tables, columns, types, nullability, primary keys and indexes', async () => {
    const target = await createTestSchema(pgUrl!, 'kiln_schema');
    const store = await openPostgresStore(target.url);
    const client = new pg.Client(parsePostgresUrl(target.url).pool);
    try {
      await store.migrate();
      await client.connect();
      const actual = await pgShapes(client);
      for (const [name, shape] of Object.entries(expectedPgShapes())) expect(actual[name], name).toEqual(shape);
    } finally {
      await client.end().catch(() => {});
      await store.close();
      await target.drop();
    }
  });
});
