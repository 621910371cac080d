/**
 * Migration files: plain SQL, `NNNN_name.sql`, applied in name order and recorded by name in
 * a `kiln_migrations` table. Each dialect keeps its own folder next to its compiled store
 * (the build copies them to dist), so the folder is found relative to the module.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface Migration {
  name: string;
  sql: string;
}

export const MIGRATIONS_TABLE = 'kiln_migrations';

export function readMigrations(folder: URL): Migration[] {
  return readdirSync(folder)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((name) => ({ name, sql: readFileSync(new URL(name, folder), 'utf8') }));
}
