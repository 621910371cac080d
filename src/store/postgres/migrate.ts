import type pg from 'pg';
import { MIGRATIONS_TABLE, readMigrations } from '../migrations.js';

const MIGRATIONS = new URL('./migrations/', import.meta.url);

/**
 * Applies pending migrations, each in its own transaction that first takes a transaction-level
 * advisory lock (one key per target schema): two processes migrating at once serialize, and
 * the second finds the file already recorded. DDL is transactional in PostgreSQL, so a failed
 * file leaves nothing behind. `schema` (already validated as a plain identifier) is created
 * if missing.
 */
export async function migratePostgres(pool: pg.Pool, schema: string | undefined): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    for (const m of readMigrations(MIGRATIONS)) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kiln:migrate:${schema ?? ''}`]);
        if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name TEXT PRIMARY KEY NOT NULL, applied_at BIGINT NOT NULL)`);
        const done = await client.query(`SELECT 1 FROM ${MIGRATIONS_TABLE} WHERE name = $1`, [m.name]);
        if (done.rowCount === 0) {
          await client.query(m.sql);
          await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (name, applied_at) VALUES ($1, $2)`, [m.name, Date.now()]);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw err;
      }
    }
  } finally {
    client.release(broken);
  }
}
