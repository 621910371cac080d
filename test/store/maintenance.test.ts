/**
 * Store.vacuumIfNeeded(): on a PostgreSQL server with autovacuum off (as the test server
 * here is), dead task_instance rows are vacuumed once they pass a share of the live ones;
 * with autovacuum on, and on SQLite, nothing is done.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createStore } from '../../src/store/index.js';
import type { Store, TiRow } from '../../src/store/types.js';
import { createTestSchema, postgresTestUrl, type TestSchema } from '../helpers/postgres.js';
import { run, serializedDag, ti } from './fixtures.js';

const pgUrl = await postgresTestUrl('PostgreSQL maintenance test');
let schema: TestSchema | undefined;
afterAll(async () => schema?.drop());

const TASKS = 400;
const RUNS = 20; // 8,000 task instances

async function churn(url: string): Promise<Store> {
  const store = await createStore(url);
  await store.migrate();
  const taskIds = Array.from({ length: TASKS }, (_, i) => `t${i}`);
  await store.upsertDag({ dagId: 'd', file: '/dev/null', version: 'v1', serialized: serializedDag('d', taskIds) });
  for (let r = 0; r < RUNS; r++) {
    const tis: TiRow[] = taskIds.map((taskId) => ti('d', `r${r}`, taskId));
    await store.createRun(run('d', `r${r}`), tis);
    // Two state changes per task instance: every one leaves a dead row behind.
    for (const [from, to] of [['none', 'scheduled'], ['scheduled', 'queued']] as const) {
      await store.write({ tis: tis.map((row) => ({ row: { ...row, state: to }, expect: { tryNumber: row.tryNumber, states: [from] } })) });
    }
  }
  return store;
}

describe('vacuumIfNeeded', () => {
  it('does nothing on SQLite', async () => {
    const store = await createStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kiln-maint-')), 'kiln.db')}`);
    await store.migrate();
    expect(await store.vacuumIfNeeded()).toEqual([]);
    await store.close();
  });

  it.skipIf(pgUrl === null)('vacuums task_instance on PostgreSQL once dead rows pile up, if autovacuum is off', async () => {
    schema = await createTestSchema(pgUrl!, 'kiln_maint');
    const client = new pg.Client({ connectionString: pgUrl! });
    await client.connect();
    try {
      const autovacuum = (await client.query<{ on: string }>(`select current_setting('autovacuum') as on`)).rows[0]!.on === 'on';
      const store = await churn(schema.url);
      try {
        const dead = async () => Number((await client.query<{ dead: string }>(
          `select coalesce(sum(n_dead_tup), 0) as dead from pg_stat_user_tables where schemaname = $1 and relname = 'task_instance'`, [schema!.schema],
        )).rows[0]!.dead);
        if (autovacuum) {
          expect(await store.vacuumIfNeeded()).toEqual([]);
          return;
        }
        // The statistics reach pg_stat_user_tables within about a second of the writes.
        await vi.waitFor(async () => expect(await dead()).toBeGreaterThan(RUNS * TASKS), { timeout: 10_000, interval: 200 });
        expect(await store.vacuumIfNeeded()).toEqual(['task_instance']);
        await vi.waitFor(async () => expect(await dead()).toBeLessThan(RUNS * TASKS * 0.2), { timeout: 10_000, interval: 200 });
        expect(await store.vacuumIfNeeded()).toEqual([]); // below the threshold now
      } finally {
        await store.close();
      }
    } finally {
      await client.end();
    }
  });
});
