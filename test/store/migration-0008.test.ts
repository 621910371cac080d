/**
 * migrations/0008 (task mapping) on a database that has data: one made at migration 0007 (the
 * files applied as kiln applied them, rows written with the columns of that time) upgrades
 * through Store.migrate() with every row kept, task instances and XComs at map index -1,
 * task callbacks and task events at -1, run callbacks and run events at null; afterwards the
 * database has the schema a fresh one has, and the new key works.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { getTableColumns, type Table } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { MIGRATIONS_TABLE, readMigrations } from '../../src/store/migrations.js';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';
import * as pgSchema from '../../src/store/postgres/schema.js';
import { runValues } from '../../src/store/rows.js';
import * as sqliteSchema from '../../src/store/sqlite/schema.js';
import type { CallbackRow, RunRow, Store, TiRow } from '../../src/store/types.js';
import { createTestSchema, postgresTestUrl } from '../helpers/postgres.js';
import { expectedPgShapes, expectedSqliteShapes, pgShapes, sqliteShapes, type Shape } from './schema-shape.js';
import { fullTi, run, ti } from './fixtures.js';

const BEFORE = '0007_sensors.sql';

/** One database at migration 0007, reached through plain SQL (kiln's code of today expects 0008). */
interface OldDatabase {
  url: string;
  /** Runs one statement with positional parameters. */
  exec(sql: string, params?: unknown[]): Promise<void>;
  /** `$n` or `?`. */
  param(n: number): string;
  migrations: URL;
  shapes(): Promise<{ actual: Record<string, Shape>; expected: Record<string, Shape> }>;
  schema: typeof sqliteSchema | typeof pgSchema;
  close(): Promise<void>;
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-migration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pgUrl = await postgresTestUrl('PostgreSQL migration tests');

async function sqliteDatabase(): Promise<OldDatabase> {
  const path = join(dir, 'kiln.db');
  const db = new Database(path);
  return {
    url: `sqlite:${path}`,
    exec: async (sql, params = []) => void db.prepare(sql).run(...params),
    param: () => '?',
    migrations: new URL('../../src/store/sqlite/migrations/', import.meta.url),
    shapes: async () => ({ actual: sqliteShapes(db), expected: expectedSqliteShapes() }),
    schema: sqliteSchema,
    close: async () => void db.close(),
  };
}

async function postgresDatabase(): Promise<OldDatabase> {
  const target = await createTestSchema(pgUrl!, 'kiln_migration');
  const client = new pg.Client(parsePostgresUrl(target.url).pool);
  await client.connect();
  return {
    url: target.url,
    exec: async (sql, params = []) => void (await client.query(sql, params)),
    param: (n) => `$${n}`,
    migrations: new URL('../../src/store/postgres/migrations/', import.meta.url),
    shapes: async () => ({ actual: await pgShapes(client), expected: expectedPgShapes() }),
    schema: pgSchema,
    close: async () => {
      await client.end();
      await target.drop();
    },
  };
}

/** Applies the migration files up to and including `last`, recording them as migrate() does. */
async function migrateTo(db: OldDatabase, last: string): Promise<void> {
  await db.exec(`CREATE TABLE ${MIGRATIONS_TABLE} (name TEXT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)`);
  for (const m of readMigrations(db.migrations).filter((f) => f.name <= last)) {
    // Several statements per file: SQLite's prepare() takes one, so split on the ends of lines.
    for (const statement of m.sql.split(/;\s*$/m).map((s) => s.trim()).filter((s) => s.replace(/--.*$/gm, '').trim() !== '')) await db.exec(statement);
    await db.exec(`INSERT INTO ${MIGRATIONS_TABLE} (name, applied_at) VALUES (${db.param(1)}, ${db.param(2)})`, [m.name, 1]);
  }
}

/** Inserts `row` (store field names) into `table`, leaving out `skip`: the columns 0008 adds. */
async function insert(db: OldDatabase, table: Table, tableName: string, row: Record<string, unknown>, skip: string[] = ['mapIndex']): Promise<void> {
  const columns = Object.entries(getTableColumns(table)).filter(([field]) => field in row && !skip.includes(field));
  await db.exec(
    `INSERT INTO ${tableName} (${columns.map(([, c]) => c.name).join(', ')}) VALUES (${columns.map((_, i) => db.param(i + 1)).join(', ')})`,
    columns.map(([field]) => row[field] ?? null),
  );
}

const runs: RunRow[] = [run('etl', 'r1', { state: 'running', startedAt: 5 }), run('etl', 'r2', { state: 'success', endedAt: 9 })];
const tisOf = (runId: string): TiRow[] =>
  runId === 'r1'
    ? [fullTi('etl', 'r1', 'a'), ti('etl', 'r1', 'b', { state: 'scheduled' }), ...Array.from({ length: 20 }, (_, i) => ti('etl', 'r1', `t${String(i).padStart(2, '0')}`))]
    : [ti('etl', 'r2', 'a', { state: 'success', tryNumber: 1 })];
const callback = (id: string, over: Partial<CallbackRow>): CallbackRow => ({
  id, dagId: 'etl', runId: 'r1', taskId: 'a', mapIndex: -1, tryNumber: 2, kind: 'failure', state: 'failed', reason: 'task_failed',
  error: 'boom', exitCode: 1, signal: null, createdAt: 7, owner: 's1', ...over,
});
const callbacks = [callback('etl/r1/a/2/failure', {}), callback('etl/r1//failure@8', { taskId: null, mapIndex: null, tryNumber: null, createdAt: 8 })];

/** What a database at 0007 holds: runs, task instances, XComs, owed callbacks and events. */
async function fill(db: OldDatabase): Promise<void> {
  const s = db.schema;
  for (const r of runs) {
    await insert(db, s.dagRun, 'dag_run', runValues(r));
    for (const t of tisOf(r.runId)) await insert(db, s.taskInstance, 'task_instance', { ...t });
  }
  await insert(db, s.xcom, 'xcom', { dagId: 'etl', runId: 'r1', taskId: 'a', value: JSON.stringify({ rows: 3 }) });
  await insert(db, s.xcom, 'xcom', { dagId: 'etl', runId: 'r2', taskId: 'a', value: null });
  for (const c of callbacks) await insert(db, s.callbackRequest, 'callback_request', { ...c });
  // Ids drawn as appenders draw them (PostgreSQL: the identity's sequence): 1, 2.
  await insert(db, s.event, 'event', { at: 100, kind: 'run', dagId: 'etl', runId: 'r1', taskId: null, state: 'queued', tryNumber: null });
  await insert(db, s.event, 'event', { at: 101, kind: 'ti', dagId: 'etl', runId: 'r1', taskId: 'a', state: 'failed', tryNumber: 2 });
}

const dialects = [
  { name: 'sqlite', open: sqliteDatabase },
  { name: 'postgres', open: pgUrl === null ? null : postgresDatabase },
];

describe.each(dialects)('$name: migration 0008 on a database at 0007', ({ open }) => {
  (open === null ? test.skip : test)('keeps every row, at map index -1, and leaves the schema a fresh database has', async () => {
    const db = await open!();
    let store: Store | undefined;
    try {
      await migrateTo(db, BEFORE);
      await fill(db);
      store = await createStore(db.url);
      await store.migrate();

      for (const r of runs) {
        expect(await store.getRun('etl', r.runId)).toEqual(r);
        // Every field of every row as written, now at map index -1 (the fixtures' default).
        expect(await store.getTaskInstances('etl', r.runId)).toEqual(tisOf(r.runId));
      }
      expect(await store.getTaskInstance({ dagId: 'etl', runId: 'r1', taskId: 'a' })).toEqual(fullTi('etl', 'r1', 'a'));
      expect(await store.getXcom({ dagId: 'etl', runId: 'r1', taskId: 'a' })).toEqual({ rows: 3 });
      expect(await store.getTaskXcoms('etl', 'r1', 'a')).toEqual([{ mapIndex: -1, value: { rows: 3 } }]);
      expect(await store.getTaskXcoms('etl', 'r2', 'a')).toEqual([{ mapIndex: -1, value: undefined }]);
      expect(await store.listCallbacks('etl', 'r1')).toEqual(callbacks);
      expect((await store.readEvents(0, 10)).map((e) => [e.id, e.kind, e.taskId, e.mapIndex, e.state])).toEqual([
        [1, 'run', null, null, 'queued'],
        [2, 'ti', 'a', -1, 'failed'],
      ]);

      // The schema of a fresh database: columns, the new primary keys, the rebuilt index.
      const { actual, expected } = await db.shapes();
      for (const [name, shape] of Object.entries(expected)) expect(actual[name], name).toEqual(shape);

      // The new key at work: b's placeholder expanded beside the unmapped rows; ids go on.
      const rows = [0, 1].map((mapIndex) => ti('etl', 'r1', 'b', { mapIndex, state: 'scheduled' }));
      expect((await store.write({ expansions: [{ dagId: 'etl', runId: 'r1', taskId: 'b', placeholder: { expectStates: ['scheduled'] }, rows }] })).expansions).toEqual([true]);
      expect((await store.getTaskInstances('etl', 'r1')).filter((t) => t.taskId === 'b')).toEqual(rows);
      expect((await store.readEvents(2, 10)).map((e) => [e.id > 2, e.mapIndex])).toEqual([[true, 0], [true, 1]]);
      await store.migrate(); // applied once
    } finally {
      await store?.close();
      await db.close();
    }
  });
});
