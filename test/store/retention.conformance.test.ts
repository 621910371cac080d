/**
 * The retention methods of the Store (findExpiredRuns, deleteExpiredRuns), run against every
 * dialect like store.conformance.test.ts: SQLite on a temp file, PostgreSQL in a fresh schema
 * per test. Also: candidates are picked through the dag_run (ended_at) index, and on
 * PostgreSQL a clean never waits for (or deadlocks with) an operator changing a run.
 */
import Database from 'better-sqlite3';
import { fillPlaceholders } from 'drizzle-orm';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';
import { preparePgStatements } from '../../src/store/postgres/statements.js';
import { EXPIRED_RUNS_START } from '../../src/store/rows.js';
import { prepareSqliteStatements } from '../../src/store/sqlite/statements.js';
import type { RunRow, Store } from '../../src/store/types.js';
import { storeDialects, type StoreTarget } from './targets.js';
import { run, ti } from './fixtures.js';

type Target = StoreTarget;

const dialects = await storeDialects('PostgreSQL retention store tests', 'kiln_retention');

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;
const CUTOFF = NOW - 30 * DAY;

describe.each(dialects)('$name store: retention', ({ name, newTarget }) => {
  const it = newTarget === null ? test.skip : test;
  let target: Target;
  let store: Store;
  const extra: Store[] = [];

  async function second(): Promise<Store> {
    const s = await target.open();
    extra.push(s);
    return s;
  }

  beforeEach(async () => {
    if (newTarget === null) return;
    target = await newTarget();
    store = await target.open();
    await store.migrate();
  });

  afterEach(async () => {
    if (newTarget === null) return;
    for (const s of extra.splice(0)) await s.close();
    await store.close();
    await target.dispose();
  });

  /** A run of DAG `dagId` with two task instances (a, b) and an XCom for a. */
  async function seed(dagId: string, runId: string, over: Partial<RunRow>): Promise<void> {
    const done = over.state === 'success' || over.state === 'failed';
    const tiState = done ? 'success' : 'running';
    expect(await store.createRun(run(dagId, runId, over), [ti(dagId, runId, 'a', { state: tiState, tryNumber: 1 }), ti(dagId, runId, 'b', { state: tiState, tryNumber: 1 })])).toBe(true);
    await store.write({ xcoms: [{ dagId, runId, taskId: 'a', value: { n: runId } }] });
  }

  const keys = (runs: Array<{ dagId: string; runId: string }>) => runs.map((r) => `${r.dagId}/${r.runId}`);

  it('deletes only finished runs that ended before the cutoff, with their task instances and XComs', async () => {
    await seed('etl', 'old-ok', { state: 'success', endedAt: CUTOFF - 2 * DAY });
    await seed('etl', 'old-failed', { state: 'failed', endedAt: CUTOFF - DAY });
    await seed('etl', 'new-ok', { state: 'success', endedAt: CUTOFF + DAY });
    await seed('etl', 'at-cutoff', { state: 'success', endedAt: CUTOFF });
    // Never deleted, however old their end time: a run cleared back to queued, or running.
    await seed('etl', 'old-queued', { state: 'queued', endedAt: CUTOFF - 3 * DAY });
    await seed('etl', 'old-running', { state: 'running', endedAt: CUTOFF - 3 * DAY });
    await seed('etl', 'never-ended', { state: 'running', endedAt: null });
    await seed('other', 'old-ok', { state: 'success', endedAt: CUTOFF - 5 * DAY });

    expect(await store.findExpiredRuns(CUTOFF, 100)).toEqual({
      runs: [
        { dagId: 'other', runId: 'old-ok', endedAt: CUTOFF - 5 * DAY, taskInstances: 2, xcoms: 1 },
        { dagId: 'etl', runId: 'old-ok', endedAt: CUTOFF - 2 * DAY, taskInstances: 2, xcoms: 1 },
        { dagId: 'etl', runId: 'old-failed', endedAt: CUTOFF - DAY, taskInstances: 2, xcoms: 1 },
      ],
      taskInstances: 6,
      xcoms: 3,
    });
    // Finding deletes nothing.
    expect(await store.getRun('other', 'old-ok')).toBeDefined();

    const deleted = await store.deleteExpiredRuns(CUTOFF, 100);
    expect(deleted).toEqual({
      runs: [
        { dagId: 'other', runId: 'old-ok', endedAt: CUTOFF - 5 * DAY },
        { dagId: 'etl', runId: 'old-ok', endedAt: CUTOFF - 2 * DAY },
        { dagId: 'etl', runId: 'old-failed', endedAt: CUTOFF - DAY },
      ],
      taskInstances: 6,
      xcoms: 3,
    });
    for (const [dagId, runId] of [['other', 'old-ok'], ['etl', 'old-ok'], ['etl', 'old-failed']] as const) {
      expect(await store.getRun(dagId, runId)).toBeUndefined();
      expect(await store.getTaskInstances(dagId, runId)).toEqual([]);
      expect(await store.getXcom({ dagId, runId, taskId: 'a' })).toBeUndefined();
    }
    expect(keys(await store.listRuns()).sort()).toEqual(['etl/at-cutoff', 'etl/never-ended', 'etl/new-ok', 'etl/old-queued', 'etl/old-running']);
    for (const runId of ['at-cutoff', 'never-ended', 'new-ok', 'old-queued', 'old-running']) {
      expect(await store.getTaskInstances('etl', runId)).toHaveLength(2);
      expect(await store.getXcom({ dagId: 'etl', runId, taskId: 'a' })).toEqual({ n: runId });
    }
    expect(await store.deleteExpiredRuns(CUTOFF, 100)).toEqual({ runs: [], taskInstances: 0, xcoms: 0 });
    expect(await store.findExpiredRuns(CUTOFF, 100)).toEqual({ runs: [], taskInstances: 0, xcoms: 0 });
  });

  it('pages through expired runs oldest first with a cursor, ties broken by DAG and run id', async () => {
    const ends = [5, 3, 3, 3, 1, 4, 2];
    for (const [i, d] of ends.entries()) await seed(i % 2 === 0 ? 'b' : 'a', `r${i}`, { state: 'success', endedAt: CUTOFF - d * DAY });
    const all = (await store.findExpiredRuns(CUTOFF, 100)).runs;
    expect(keys(all)).toEqual(['b/r0', 'a/r5', 'a/r1', 'a/r3', 'b/r2', 'b/r6', 'b/r4']);
    const paged: string[] = [];
    let after;
    for (;;) {
      const page = await store.findExpiredRuns(CUTOFF, 2, after);
      paged.push(...keys(page.runs));
      expect(page.taskInstances).toBe(2 * page.runs.length);
      if (page.runs.length < 2) break;
      after = page.runs.at(-1);
    }
    expect(paged).toEqual(keys(all));
  });

  it('deletes at most `limit` runs per call, oldest first', async () => {
    for (let i = 0; i < 5; i++) await seed('etl', `r${i}`, { state: 'success', endedAt: CUTOFF - (10 - i) * DAY });
    expect(keys((await store.deleteExpiredRuns(CUTOFF, 2)).runs)).toEqual(['etl/r0', 'etl/r1']);
    expect(keys((await store.deleteExpiredRuns(CUTOFF, 2)).runs)).toEqual(['etl/r2', 'etl/r3']);
    expect(await store.deleteExpiredRuns(CUTOFF, 2)).toMatchObject({ runs: [{ runId: 'r4' }], taskInstances: 2, xcoms: 1 });
    expect(await store.listRuns()).toEqual([]);
  });

  it('several cleaners at once delete every run exactly once', async () => {
    for (let i = 0; i < 60; i++) await seed(`d${i % 3}`, `r${i}`, { state: i % 4 === 0 ? 'failed' : 'success', endedAt: CUTOFF - (i + 1) * 1000 });
    await seed('d0', 'keep', { state: 'success', endedAt: CUTOFF + 1 });
    const cleaners = [store, await second(), await second()];
    const deleted: string[] = [];
    let taskInstances = 0;
    await Promise.all(
      cleaners.map(async (s) => {
        for (;;) {
          const batch = await s.deleteExpiredRuns(CUTOFF, 7);
          if (batch.runs.length === 0) return;
          deleted.push(...keys(batch.runs));
          taskInstances += batch.taskInstances;
        }
      }),
    );
    expect(deleted).toHaveLength(60);
    expect(new Set(deleted).size).toBe(60);
    expect(taskInstances).toBe(120);
    expect(keys(await store.listRuns())).toEqual(['d0/keep']);
  });

  it('picks candidate runs through the dag_run (ended_at) index', async () => {
    // A realistic table: many runs, a thin slice of them past the cutoff.
    for (let i = 0; i < 400; i++) await seed(`d${i % 4}`, `r${i}`, { state: 'success', endedAt: CUTOFF + (i - 5) * 3_600_000 });
    const plan = name === 'sqlite' ? await sqlitePlan(target.url) : await postgresPlan(target.url);
    expect(plan).toContain('dag_run_ended_at_idx');
    expect(plan).not.toMatch(/SCAN task_instance|Seq Scan on task_instance|SCAN dag_run\b|Seq Scan on dag_run/);
  });

  /** A finished run with a mapped task m (map indexes 0..3) and an XCom per instance, plus the unmapped a and b. */
  async function seedMapped(runId: string, endedAt: number): Promise<void> {
    const mapped = [0, 1, 2, 3].map((mapIndex) => ti('etl', runId, 'm', { mapIndex, state: 'success', tryNumber: 1 }));
    await seed('etl', runId, { state: 'success', endedAt });
    await store.write({ expansions: [{ dagId: 'etl', runId, taskId: 'm', placeholder: null, rows: mapped }] });
    await store.write({ xcoms: mapped.map((t) => ({ dagId: 'etl', runId, taskId: 'm', mapIndex: t.mapIndex, value: t.mapIndex })) });
  }

  it('counts and deletes every mapped task instance and its XCom', async () => {
    await seedMapped('old', CUTOFF - DAY);
    await seedMapped('new', CUTOFF + DAY);
    expect(await store.findExpiredRuns(CUTOFF, 100)).toEqual({
      runs: [{ dagId: 'etl', runId: 'old', endedAt: CUTOFF - DAY, taskInstances: 6, xcoms: 5 }],
      taskInstances: 6,
      xcoms: 5,
    });
    expect(await store.deleteExpiredRuns(CUTOFF, 100)).toEqual({ runs: [{ dagId: 'etl', runId: 'old', endedAt: CUTOFF - DAY }], taskInstances: 6, xcoms: 5 });
    expect(await store.getTaskInstances('etl', 'old')).toEqual([]);
    expect(await store.getTaskXcoms('etl', 'old', 'm')).toEqual([]);
    expect(await store.getTaskInstances('etl', 'new')).toHaveLength(6);
    expect((await store.getTaskXcoms('etl', 'new', 'm')).map((x) => x.value)).toEqual([0, 1, 2, 3]);
  });

  (name === 'postgres' ? it : test.skip)('skips a run one of whose mapped instances an operator is changing, without waiting for it', async () => {
    await seedMapped('busy', CUTOFF - 2 * DAY);
    await seedMapped('free', CUTOFF - DAY);
    const operator = new pg.Client(parsePostgresUrl(target.url).pool);
    await operator.connect();
    try {
      // Only map index 2 is held: the other instances of m can be locked, yet the run is busy.
      await operator.query('BEGIN');
      await operator.query("UPDATE task_instance SET state = 'none' WHERE dag_id = 'etl' AND run_id = 'busy' AND task_id = 'm' AND map_index = 2");
      const first = await Promise.race([
        store.deleteExpiredRuns(CUTOFF, 100),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the clean waited for the operator')), 5000)),
      ]);
      expect(keys(first.runs)).toEqual(['etl/free']);
      expect(first).toMatchObject({ taskInstances: 6, xcoms: 5 });
      await operator.query('ROLLBACK');
    } finally {
      await operator.end();
    }
    expect(keys((await store.deleteExpiredRuns(CUTOFF, 100)).runs)).toEqual(['etl/busy']);
  });

  (name === 'postgres' ? it : test.skip)('skips a run an operator is changing, without waiting for it, and deletes it later', async () => {
    await seed('etl', 'busy', { state: 'success', endedAt: CUTOFF - 2 * DAY });
    await seed('etl', 'locked-run', { state: 'success', endedAt: CUTOFF - 2 * DAY + 1 });
    await seed('etl', 'free', { state: 'success', endedAt: CUTOFF - DAY });
    const operator = new pg.Client(parsePostgresUrl(target.url).pool);
    await operator.connect();
    try {
      // `tasks clear` writes task instances first, then the run: hold a task instance of one
      // run, and the row of another, as such a transaction would mid-way.
      await operator.query('BEGIN');
      await operator.query("UPDATE task_instance SET state = 'none' WHERE dag_id = 'etl' AND run_id = 'busy' AND task_id = 'b'");
      await operator.query("SELECT 1 FROM dag_run WHERE dag_id = 'etl' AND run_id = 'locked-run' FOR UPDATE");
      const first = await store.deleteExpiredRuns(CUTOFF, 100);
      expect(keys(first.runs)).toEqual(['etl/free']);
      expect(first).toMatchObject({ taskInstances: 2, xcoms: 1 });
      // The operator's transaction goes on undisturbed: its write to the run is not blocked.
      await operator.query("UPDATE dag_run SET state = 'queued', ended_at = NULL WHERE dag_id = 'etl' AND run_id = 'busy'");
      await operator.query('COMMIT');
    } finally {
      await operator.end();
    }
    // Cleared back to queued: never deleted. The run that was only locked goes now.
    expect(keys((await store.deleteExpiredRuns(CUTOFF, 100)).runs)).toEqual(['etl/locked-run']);
    expect(keys(await store.listRuns())).toEqual(['etl/busy']);
    expect(await store.getTaskInstances('etl', 'busy')).toHaveLength(2);
  });
});

/** EXPLAIN QUERY PLAN of the store's own candidate query, with its parameters. */
async function sqlitePlan(url: string): Promise<string> {
  const db = new Database(url.replace(/^sqlite:/, ''));
  try {
    db.exec('ANALYZE');
    const query = prepareSqliteStatements(sqliteDrizzle({ client: db })).runsExpired.getQuery();
    const params = fillPlaceholders(query.params, { before: CUTOFF, limit: 500, ...EXPIRED_RUNS_START });
    const rows = db.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...(params as unknown[])) as Array<{ detail: string }>;
    return rows.map((r) => r.detail).join('\n');
  } finally {
    db.close();
  }
}

/** EXPLAIN of the store's candidate queries (read and lock), after ANALYZE. */
async function postgresPlan(url: string): Promise<string> {
  const client = new pg.Client(parsePostgresUrl(url).pool);
  await client.connect();
  try {
    await client.query('ANALYZE');
    const statements = preparePgStatements(pgDrizzle({ client }));
    const plans: string[] = [];
    for (const [statement, values] of [
      [statements.runsExpired, { before: CUTOFF, limit: 500, ...EXPIRED_RUNS_START }],
      [statements.runsExpiredLock, { before: CUTOFF, limit: 500 }],
    ] as const) {
      const query = statement.getQuery();
      const result = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query.sql}`, fillPlaceholders(query.params, values));
      plans.push(result.rows.map((r) => r['QUERY PLAN']).join('\n'));
    }
    return plans.join('\n');
  } finally {
    await client.end();
  }
}
