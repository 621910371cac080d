/**
 * The web API's reads of mapped tasks, on every dialect like store.conformance.test.ts: the
 * grid page with a mapped task's instances counted by state in the database (gridRuns), and
 * one task's instances paged and counted (taskInstancesOf, taskStateCounts), each through the
 * task-instance primary key, never a scan of the table.
 */
import Database from 'better-sqlite3';
import { fillPlaceholders, type SQLWrapper } from 'drizzle-orm';
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { TiState } from '../../src/dag/types.js';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';
import { preparePgStatements } from '../../src/store/postgres/statements.js';
import { prepareSqliteStatements } from '../../src/store/sqlite/statements.js';
import type { GridMappedCount, GridTi, Store, TiRow } from '../../src/store/types.js';
import { storeDialects, type StoreTarget } from './targets.js';
import { run, ti } from './fixtures.js';

type Target = StoreTarget;

const dialects = await storeDialects('PostgreSQL mapped-read store tests', 'kiln_mapped_reads');

/** Mapped instance `mapIndex` of task `taskId` in run etl/`runId`. */
const mi = (runId: string, taskId: string, mapIndex: number, state: TiState, tryNumber = 1): TiRow => ti('etl', runId, taskId, { mapIndex, state, tryNumber });

/** What gridRuns should return for these rows, counted one by one here (the reference). */
function expectedGrid(rows: readonly TiRow[]): { tis: GridTi[]; mapped: GridMappedCount[] } {
  const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const sorted = [...rows].sort((a, b) => byKey(a.runId, b.runId) || byKey(a.taskId, b.taskId) || a.mapIndex - b.mapIndex);
  const tis = sorted.filter((t) => t.mapIndex < 0).map((t) => ({ runId: t.runId, taskId: t.taskId, mapIndex: t.mapIndex, state: t.state, tryNumber: t.tryNumber }));
  const groups = new Map<string, GridMappedCount>();
  for (const t of sorted.filter((r) => r.mapIndex >= 0)) {
    const k = `${t.runId}\0${t.taskId}\0${t.state}`;
    const g = groups.get(k) ?? { runId: t.runId, taskId: t.taskId, state: t.state, count: 0, maxTryNumber: 0 };
    g.count++;
    g.maxTryNumber = Math.max(g.maxTryNumber, t.tryNumber);
    groups.set(k, g);
  }
  const mapped = [...groups.values()].sort((a, b) => byKey(a.runId, b.runId) || byKey(a.taskId, b.taskId) || byKey(a.state, b.state));
  return { tis, mapped };
}

describe.each(dialects)('$name store: reads of mapped tasks', ({ name, newTarget }) => {
  const it = newTarget === null ? test.skip : test;
  let target: Target;
  let store: Store;

  beforeEach(async () => {
    if (newTarget === null) return;
    target = await newTarget();
    store = await target.open();
    await store.migrate();
  });

  afterEach(async () => {
    if (newTarget === null) return;
    await store.close();
    await target.dispose();
  });

  /**
   * Runs r1..r3 (logical dates 1000..3000) of etl, each with: unmapped a and z, mapped m
   * (12 instances over five states and three try numbers, map indexes 0..11 inserted out of
   * order), mapped n (two instances), and in r2 the unexpanded placeholder of p. Plus a run of
   * another DAG with the same task ids. Returns etl's rows.
   */
  async function seedRuns(): Promise<TiRow[]> {
    const all: TiRow[] = [];
    const states: TiState[] = ['success', 'failed', 'running', 'up_for_retry', 'success', 'queued', 'success', 'removed', 'success', 'failed', 'success', 'running'];
    for (let r = 1; r <= 3; r++) {
      const runId = `r${r}`;
      const m = states.map((s, i) => mi(runId, 'm', i, r === 2 && i < 6 ? 'success' : s, s === 'up_for_retry' ? 3 : s === 'queued' ? 0 : r));
      const rows = [
        ti('etl', runId, 'z', { state: 'success', tryNumber: 1 }),
        ...m.reverse(),
        mi(runId, 'n', 1, 'scheduled', 0),
        ti('etl', runId, 'a', { state: r === 3 ? 'running' : 'success', tryNumber: r }),
        mi(runId, 'n', 0, 'success', 2),
        ...(r === 2 ? [ti('etl', runId, 'p', { state: 'scheduled' })] : []),
      ];
      all.push(...rows);
      expect(await store.createRun(run('etl', runId, { logicalDate: r * 1000 }), rows)).toBe(true);
    }
    await store.createRun(run('other', 'r1', { logicalDate: 9000 }), [ti('other', 'r1', 'a'), ti('other', 'r1', 'm', { mapIndex: 0, state: 'failed' })]);
    return all;
  }

  describe('gridRuns', () => {
    it("counts a mapped task's instances per (run, task, state) as a per-row count does, and returns the unmapped ones as rows", async () => {
      const rows = await seedRuns();
      const page = await store.gridRuns('etl', 10);
      expect(page.runs.map((r) => r.runId)).toEqual(['r3', 'r2', 'r1']);
      const expected = expectedGrid(rows);
      expect(page.tis).toEqual(expected.tis);
      expect(page.mapped).toEqual(expected.mapped);
      // The same, counted from what getTaskInstances reads, run by run.
      for (const runId of ['r1', 'r2', 'r3']) {
        const perRow = expectedGrid(await store.getTaskInstances('etl', runId));
        expect(page.tis.filter((t) => t.runId === runId)).toEqual(perRow.tis);
        expect(page.mapped.filter((m) => m.runId === runId)).toEqual(perRow.mapped);
      }
      // Spot checks of the reference itself.
      expect(page.mapped.filter((m) => m.runId === 'r1' && m.taskId === 'm')).toEqual([
        { runId: 'r1', taskId: 'm', state: 'failed', count: 2, maxTryNumber: 1 },
        { runId: 'r1', taskId: 'm', state: 'queued', count: 1, maxTryNumber: 0 },
        { runId: 'r1', taskId: 'm', state: 'removed', count: 1, maxTryNumber: 1 },
        { runId: 'r1', taskId: 'm', state: 'running', count: 2, maxTryNumber: 1 },
        { runId: 'r1', taskId: 'm', state: 'success', count: 5, maxTryNumber: 1 },
        { runId: 'r1', taskId: 'm', state: 'up_for_retry', count: 1, maxTryNumber: 3 },
      ]);
      expect(page.tis.filter((t) => t.runId === 'r2').map((t) => t.taskId)).toEqual(['a', 'p', 'z']);
      expect(page.mapped.reduce((n, m) => n + m.count, 0)).toBe(3 * 14);
    });

    it("pages with the cursor: a page's counts are its runs' only", async () => {
      await seedRuns();
      const first = await store.gridRuns('etl', 2);
      expect(first.runs.map((r) => r.runId)).toEqual(['r3', 'r2']);
      expect(new Set([...first.tis, ...first.mapped].map((t) => t.runId))).toEqual(new Set(['r3', 'r2']));
      const last = first.runs[1]!;
      const second = await store.gridRuns('etl', 2, { logicalDate: last.logicalDate, runId: last.runId });
      expect(second.runs.map((r) => r.runId)).toEqual(['r1']);
      expect(second.mapped.map((m) => `${m.taskId}:${m.state}:${m.count}`)).toEqual([
        'm:failed:2', 'm:queued:1', 'm:removed:1', 'm:running:2', 'm:success:5', 'm:up_for_retry:1', 'n:scheduled:1', 'n:success:1',
      ]);
      expect(await store.gridRuns('other', 10)).toMatchObject({ tis: [{ taskId: 'a' }], mapped: [{ taskId: 'm', state: 'failed', count: 1 }] });
    });
  });

  describe("one task's instances", () => {
    it('taskInstancesOf reads them in map-index order (2 before 10), that task and run only', async () => {
      await seedRuns();
      const m = await store.taskInstancesOf('etl', 'r1', 'm');
      expect(m.map((t) => t.mapIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(m[3]).toEqual(mi('r1', 'm', 3, 'up_for_retry', 3));
      expect((await store.taskInstancesOf('etl', 'r1', 'a')).map((t) => [t.runId, t.mapIndex, t.state])).toEqual([['r1', -1, 'success']]);
      expect(await store.taskInstancesOf('etl', 'r1', 'nope')).toEqual([]);
      expect(await store.taskInstancesOf('etl', 'nope', 'm')).toEqual([]);
      expect(await store.taskInstancesOf('other', 'r1', 'm')).toEqual([ti('other', 'r1', 'm', { mapIndex: 0, state: 'failed' })]);
    });

    it('taskInstancesOf pages them by offset and limit, after the state filter', async () => {
      await store.createRun(run('etl', 'r1'), [2, 10, 1, 11, 0, 20].map((i) => mi('r1', 'm', i, i % 2 === 0 ? 'success' : 'failed')));
      const page = async (q: Parameters<Store['taskInstancesOf']>[3]) => (await store.taskInstancesOf('etl', 'r1', 'm', q)).map((t) => t.mapIndex);
      expect(await page({})).toEqual([0, 1, 2, 10, 11, 20]);
      expect(await page({ limit: 2 })).toEqual([0, 1]);
      expect(await page({ offset: 2, limit: 3 })).toEqual([2, 10, 11]);
      expect(await page({ offset: 4 })).toEqual([11, 20]);
      expect(await page({ offset: 6, limit: 10 })).toEqual([]);
      expect(await page({ states: ['success'] })).toEqual([0, 2, 10, 20]);
      expect(await page({ states: ['success'], offset: 1, limit: 2 })).toEqual([2, 10]);
      expect(await page({ states: ['failed', 'running'] })).toEqual([1, 11]);
      expect(await page({ states: ['running'] })).toEqual([]);
      expect(await page({ states: [] })).toEqual([]);
    });

    it('taskStateCounts counts them by state and says whether the task is mapped', async () => {
      await seedRuns();
      expect(await store.taskStateCounts('etl', 'r1', 'm')).toEqual({
        states: { queued: 1, running: 2, success: 5, failed: 2, up_for_retry: 1, removed: 1 },
        count: 12,
        mapped: true,
      });
      // States in the state machine's order, whatever order the database grouped them in.
      expect(Object.keys((await store.taskStateCounts('etl', 'r1', 'm')).states)).toEqual(['queued', 'running', 'success', 'failed', 'up_for_retry', 'removed']);
      expect(await store.taskStateCounts('etl', 'r2', 'm')).toEqual({ states: { success: 9, removed: 1, running: 1, failed: 1 }, count: 12, mapped: true });
      expect(await store.taskStateCounts('etl', 'r3', 'a')).toEqual({ states: { running: 1 }, count: 1, mapped: false });
      expect(await store.taskStateCounts('etl', 'r2', 'p')).toEqual({ states: { scheduled: 1 }, count: 1, mapped: false });
      expect(await store.taskStateCounts('etl', 'r1', 'nope')).toEqual({ states: {}, count: 0, mapped: false });
      expect(await store.taskStateCounts('etl', 'nope', 'm')).toEqual({ states: {}, count: 0, mapped: false });
    });
  });

  it('reads through the task-instance primary key, never a scan of the table', async () => {
    // A realistic table: 30 runs of two unmapped tasks and a 300-instance map.
    for (let r = 0; r < 30; r++) {
      const runId = `big${String(r).padStart(2, '0')}`;
      const rows = [ti('etl', runId, 'a', { state: 'success' }), ti('etl', runId, 'z'), ...Array.from({ length: 300 }, (_, i) => mi(runId, 'm', i, i % 7 === 0 ? 'failed' : 'success'))];
      await store.createRun(run('etl', runId, { logicalDate: r * 1000 }), rows);
    }
    const runIds = ['big29', 'big28', 'big27'];
    const task = { dagId: 'etl', runId: 'big03', taskId: 'm', offset: 100, limit: 50 };
    const statements = {
      gridTis: { dagId: 'etl', runIds },
      gridMapped: { dagId: 'etl', runIds },
      tisOfTask: task,
      tisOfTaskInStates: { ...task, states: ['failed'] },
      tiStateCountsOfTask: { dagId: 'etl', runId: 'big03', taskId: 'm' },
    };
    const plans = name === 'sqlite' ? sqlitePlans(target.url, statements) : await postgresPlans(target.url, statements);
    for (const [statement, plan] of Object.entries(plans)) {
      expect(plan, statement).toMatch(name === 'sqlite' ? /SEARCH task_instance USING (COVERING )?INDEX sqlite_autoindex_task_instance_1 \(dag_id=\? AND run_id=\?/ : /Index (Only )?Scan using task_instance_pkey|Bitmap Index Scan on task_instance_pkey/);
      expect(plan, statement).not.toMatch(/SCAN task_instance\b(?! USING)|Seq Scan on task_instance/);
    }
    // One task's range is all three key columns, read in map-index order: no sort.
    for (const statement of ['tisOfTask', 'tisOfTaskInStates'] as const) {
      expect(plans[statement], statement).toMatch(name === 'sqlite' ? /dag_id=\? AND run_id=\? AND task_id=\?/ : /Index Cond: \(\(dag_id = .*\) AND \(run_id = .*\) AND \(task_id = .*\)\)/);
      expect(plans[statement], statement).not.toMatch(/TEMP B-TREE|Sort/);
    }
  });
});

type PlanParams = Record<string, Record<string, unknown>>;

/** EXPLAIN QUERY PLAN of the named SQLite statements with these parameters, after ANALYZE. */
function sqlitePlans(url: string, statements: PlanParams): Record<string, string> {
  const db = new Database(url.replace(/^sqlite:/, ''));
  try {
    db.exec('ANALYZE');
    const prepared = prepareSqliteStatements(sqliteDrizzle({ client: db })) as unknown as Record<string, { getQuery(): { sql: string; params: unknown[] } }>;
    const out: Record<string, string> = {};
    for (const [name, values] of Object.entries(statements)) {
      const query = prepared[name]!.getQuery();
      const params = fillPlaceholders(query.params, { ...values, ...('runIds' in values ? { runIds: JSON.stringify(values.runIds) } : {}), ...('states' in values ? { states: JSON.stringify(values.states) } : {}) });
      const rows = db.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...(params as unknown[])) as Array<{ detail: string }>;
      out[name] = rows.map((r) => r.detail).join('\n');
    }
    return out;
  } finally {
    db.close();
  }
}

/**
 * EXPLAIN of the named PostgreSQL statements with these parameters, after ANALYZE (the
 * planner's own choice: no enable_seqscan): the plan for these values, then the generic plan
 * a prepared statement may switch to after five executions (plan_cache_mode
 * force_generic_plan), which cannot see the values.
 */
async function postgresPlans(url: string, statements: PlanParams): Promise<Record<string, string>> {
  const client = new pg.Client(parsePostgresUrl(url).pool);
  await client.connect();
  try {
    await client.query('ANALYZE');
    const prepared = preparePgStatements(pgDrizzle({ client })) as unknown as Record<string, SQLWrapper & { getQuery(): { sql: string; params: unknown[] } }>;
    const literal = (v: unknown): string => (typeof v === 'number' ? String(v) : v === null ? 'NULL' : client.escapeLiteral(Array.isArray(v) ? `{${v.join(',')}}` : String(v)));
    const out: Record<string, string> = {};
    for (const [name, values] of Object.entries(statements)) {
      const query = prepared[name]!.getQuery();
      const params = fillPlaceholders(query.params, values);
      const custom = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query.sql}`, params);
      await client.query(`PREPARE plan_check AS ${query.sql}`);
      await client.query('SET plan_cache_mode = force_generic_plan');
      const generic = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE plan_check(${params.map(literal).join(', ')})`);
      await client.query('RESET plan_cache_mode');
      await client.query('DEALLOCATE plan_check');
      out[name] = [...custom.rows, { 'QUERY PLAN': '-- generic:' }, ...generic.rows].map((r) => r['QUERY PLAN']).join('\n');
    }
    return out;
  } finally {
    await client.end();
  }
}
