/**
 * The databases an end-to-end suite runs on: SQLite always, PostgreSQL when reachable
 * (required in CI; see postgres.ts). `url(projectDir)` gives each scratch project its own
 * database: a SQLite file inside it, or a PostgreSQL schema named after it (kiln creates a
 * missing schema when it migrates).
 */
import { basename, join } from 'node:path';
import pg from 'pg';
import { postgresTestUrl } from './postgres.js';

export interface DatabaseUnderTest {
  name: 'sqlite' | 'postgres';
  url(projectDir: string): string;
  cleanup(): Promise<void>;
}

export async function databasesUnderTest(suite: string): Promise<DatabaseUnderTest[]> {
  const sqlite: DatabaseUnderTest = { name: 'sqlite', url: (dir) => `sqlite:${join(dir, 'kiln.db')}`, cleanup: async () => {} };
  const base = await postgresTestUrl(`PostgreSQL ${suite} tests`);
  if (!base) return [sqlite];
  const schemas = new Set<string>();
  const postgres: DatabaseUnderTest = {
    name: 'postgres',
    url(dir) {
      const schema = `e2e_${suite}_${basename(dir).replace(/[^A-Za-z0-9_]/g, '_')}`.toLowerCase();
      schemas.add(schema);
      const u = new URL(base);
      u.searchParams.set('schema', schema);
      return u.toString();
    },
    async cleanup() {
      if (schemas.size === 0) return;
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      try {
        for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
  return [sqlite, postgres];
}
