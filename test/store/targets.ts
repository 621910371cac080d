/**
 * The databases the store conformance suites run against: SQLite on a fresh file per target
 * (in a nested folder: the store must create it), PostgreSQL in a fresh schema per target
 * (see test/helpers/postgres.ts), skipped with a notice when no server is reachable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { createTestSchema, postgresTestUrl } from '../helpers/postgres.js';

/** A place for one test's database: `open()` may be called several times (several processes). */
export interface StoreTarget {
  url: string;
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

export interface StoreDialect {
  name: 'sqlite' | 'postgres';
  /** null: this dialect is unavailable here, its tests are skipped. */
  newTarget: (() => Promise<StoreTarget>) | null;
}

/** `suite` names the tests in the skip notice; `prefix` the temp folder and the schemas. */
export async function storeDialects(suite: string, prefix: string): Promise<StoreDialect[]> {
  const sqliteDir = mkdtempSync(join(tmpdir(), `${prefix.replace(/_/g, '-')}-`));
  afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
  let sqliteFiles = 0;
  const pgUrl = await postgresTestUrl(suite);
  return [
    {
      name: 'sqlite',
      newTarget: async () => {
        const url = `sqlite:${join(sqliteDir, `t${++sqliteFiles}`, 'kiln.db')}`;
        return { url, open: () => createStore(url), dispose: async () => {} };
      },
    },
    {
      name: 'postgres',
      newTarget:
        pgUrl === null
          ? null
          : async () => {
              const schema = await createTestSchema(pgUrl, prefix);
              return { url: schema.url, open: () => createStore(schema.url), dispose: schema.drop };
            },
    },
  ];
}
