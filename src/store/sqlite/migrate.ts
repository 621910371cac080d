import type Database from 'better-sqlite3';
import { MIGRATIONS_TABLE, readMigrations } from '../migrations.js';

const MIGRATIONS = new URL('./migrations/', import.meta.url);

/**
 * Applies pending migrations, each in its own BEGIN IMMEDIATE transaction: the write lock is
 * taken before we look at `kiln_migrations`, so two processes migrating at once serialize
 * (the loser waits out busy_timeout) and the second finds the file already applied.
 */
export function migrateSqlite(db: Database.Database): void {
  for (const m of readMigrations(MIGRATIONS)) {
    db.transaction(() => {
      db.exec(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)`);
      const done = db.prepare(`SELECT 1 FROM ${MIGRATIONS_TABLE} WHERE name = ?`).get(m.name);
      if (done !== undefined) return;
      db.exec(m.sql);
      db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)`).run(m.name, Date.now());
    }).immediate();
  }
}
