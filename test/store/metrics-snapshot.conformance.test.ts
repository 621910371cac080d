/**
 * Store.metricsSnapshot against every dialect (SQLite on a temp file, PostgreSQL in a fresh
 * schema per test): what the scrape-time gauges read, in one statement, and that it reads the
 * task instances through the state index (finished rows pile up; a scrape must not scan them).
 */
import Database from 'better-sqlite3';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';
import { preparePgStatements } from '../../src/store/postgres/statements.js';
import { prepareSqliteStatements } from '../../src/store/sqlite/statements.js';
import type { MetricsSnapshot, Store, TiRow } from '../../src/store/types.js';
import { storeDialects } from './targets.js';
import { run, ti } from './fixtures.js';


const dialects = await storeDialects('PostgreSQL metrics snapshot store tests', 'kiln_metrics');

/** Sorted, so the dialects' row orders do not matter. */
function sorted(s: MetricsSnapshot): MetricsSnapshot {
  const by = <T>(key: (x: T) => string) => (a: T, b: T) => key(a).localeCompare(key(b));
  return {
    taskInstances: [...s.taskInstances].sort(by((t) => `${t.dagId}/${t.state}/${t.pool}`)),
    runs: [...s.runs].sort(by((r) => `${r.dagId}/${r.state}`)),
    pools: [...s.pools].sort(by((p) => p.name)),
    importErrors: s.importErrors,
  };
}

describe.each(dialects)('$name store: metricsSnapshot', ({ name, newTarget }) => {
  const it = newTarget === null ? test.skip : test;
  let target: { url: string; dispose(): Promise<void> };
  let store: Store;

  beforeEach(async () => {
    if (newTarget === null) return;
    target = await newTarget();
    store = await createStore(target.url);
    await store.migrate();
  });

  afterEach(async () => {
    if (newTarget === null) return;
    await store.close();
    await target.dispose();
  });

  it('is empty but for the default pool on a new database', async () => {
    expect(sorted(await store.metricsSnapshot())).toEqual({ taskInstances: [], runs: [], pools: [{ name: 'default_pool', slots: 128 }], importErrors: 0 });
  });

  it('counts unfinished task instances by DAG, state and pool with their slots, active runs by DAG and state, pools and import errors', async () => {
    await store.setPool({ name: 'gpu', slots: 2, description: null });
    const tis = (dagId: string, runId: string, rows: Array<[string, Partial<TiRow>]>) => rows.map(([taskId, over]) => ti(dagId, runId, taskId, over));
    await store.createRun(run('etl', 'r1', { state: 'running', startedAt: 1 }), tis('etl', 'r1', [
      ['a', { state: 'running', tryNumber: 1 }],
      ['b', { state: 'running', tryNumber: 1, pool: 'gpu', poolSlots: 2 }],
      ['c', { state: 'queued', tryNumber: 1 }],
      ['d', { state: 'scheduled', pool: 'gpu', poolSlots: 2 }],
      ['e', { state: 'up_for_retry', tryNumber: 1 }],
      ['s', { state: 'up_for_reschedule', tryNumber: 0 }],
      ['f', { state: 'success', tryNumber: 1 }],
      ['g', { state: 'none' }],
    ]));
    await store.createRun(run('etl', 'r2', { state: 'running', startedAt: 1 }), tis('etl', 'r2', [['a', { state: 'running', tryNumber: 1, poolSlots: 3 }], ['b', { state: 'failed', tryNumber: 2 }]]));
    await store.createRun(run('etl', 'r3'), tis('etl', 'r3', [['a', {}]]));
    await store.createRun(run('report', 'r1', { state: 'success', endedAt: 2 }), tis('report', 'r1', [['x', { state: 'success', tryNumber: 1 }]]));
    await store.createRun(run('report', 'r2'), tis('report', 'r2', [['x', { state: 'scheduled', pool: 'ghost' }]]));
    await store.setImportError('/dags/a.ts', 'SyntaxError', 1);
    await store.setImportError('/dags/b.ts', 'cycle', 1);

    expect(sorted(await store.metricsSnapshot())).toEqual({
      taskInstances: [
        { dagId: 'etl', state: 'queued', pool: 'default_pool', count: 1, poolSlots: 1 },
        { dagId: 'etl', state: 'running', pool: 'default_pool', count: 2, poolSlots: 4 },
        { dagId: 'etl', state: 'running', pool: 'gpu', count: 1, poolSlots: 2 },
        { dagId: 'etl', state: 'scheduled', pool: 'gpu', count: 1, poolSlots: 2 },
        { dagId: 'etl', state: 'up_for_reschedule', pool: 'default_pool', count: 1, poolSlots: 1 },
        { dagId: 'etl', state: 'up_for_retry', pool: 'default_pool', count: 1, poolSlots: 1 },
        { dagId: 'report', state: 'scheduled', pool: 'ghost', count: 1, poolSlots: 1 },
      ],
      runs: [
        { dagId: 'etl', state: 'queued', count: 1 },
        { dagId: 'etl', state: 'running', count: 2 },
        { dagId: 'report', state: 'queued', count: 1 },
      ],
      pools: [{ name: 'default_pool', slots: 128 }, { name: 'gpu', slots: 2 }],
      importErrors: 2,
    });
  });

  it('reads the task instances through the state index', async () => {
    const plan = name === 'sqlite' ? sqlitePlan(target.url) : await postgresPlan(target.url);
    const tiPart = plan.split('\n').filter((l) => /task_instance/.test(l)).join('\n');
    expect(tiPart).toMatch(/task_instance_state_heartbeat_idx/);
    expect(plan).not.toMatch(/SCAN task_instance\b(?! USING)|Seq Scan on task_instance/);
  });
});

function sqlitePlan(url: string): string {
  const db = new Database(url.replace(/^sqlite:/, ''));
  try {
    db.exec('ANALYZE');
    const query = prepareSqliteStatements(sqliteDrizzle({ client: db })).metricsSnapshot.getQuery();
    const rows = db.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...(query.params as unknown[])) as Array<{ detail: string }>;
    return rows.map((r) => r.detail).join('\n');
  } finally {
    db.close();
  }
}

async function postgresPlan(url: string): Promise<string> {
  const client = new pg.Client(parsePostgresUrl(url).pool);
  await client.connect();
  try {
    // Tiny tables are cheaper to scan: ask whether the index can serve the query at all.
    await client.query('SET enable_seqscan = off');
    const query = preparePgStatements(pgDrizzle({ client })).metricsSnapshot.getQuery();
    const result = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query.sql}`, query.params as unknown[]);
    return result.rows.map((r) => r['QUERY PLAN']).join('\n');
  } finally {
    await client.end();
  }
}
