/**
 * Case 4, prepared against unprepared hot-path statements (the seed's baked queries), on
 * SQLite (better-sqlite3) and PostgreSQL (node-postgres), through drizzle with kiln's schema:
 *   - the task-instance compare-and-set UPDATE (every column a state change writes, where
 *     key, try number and expected states match: the statement of kiln's store), and
 *   - the XCom insert (INSERT ... ON CONFLICT DO UPDATE),
 * each in autocommit (one transaction per statement) and batched (all in one transaction).
 * "prepared": the statement is built with placeholders and prepared once, then run with
 * values. "unprepared": drizzle's query builder builds the same SQL with the values each
 * time (and the driver prepares or parses it again). Same SQL shape both ways.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { and, eq, sql } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { createStore } from '../../dist/src/store/index.js';
import * as pgSchema from '../../dist/src/store/postgres/schema.js';
import * as sqliteSchema from '../../dist/src/store/sqlite/schema.js';
import { interleave } from '../lib/interleave.mjs';
import { fmt, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'prepared';
export const title = 'Prepared against unprepared hot-path statements, SQLite and PostgreSQL (case 4)';

export const POSTGRES_URL = process.env.KILN_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = 1000;
const DAG = 'bench_prepared';
const RUN = 'run_1';
const MUTABLE = ['state', 'tryNumber', 'maxTries', 'pool', 'poolSlots', 'priorityWeight', 'isolation', 'queuedAt', 'startedAt', 'endedAt', 'durationMs', 'pid', 'exitCode', 'signal', 'error', 'peakRssBytes', 'cpuMs', 'lastHeartbeatAt', 'queuedBy', 'nextRetryAt'];

function tiRow(i, n) {
  const now = 1_700_000_000_000 + n;
  return {
    dagId: DAG, runId: RUN, taskId: `t${i}`, mapIndex: -1, state: n % 2 ? 'running' : 'queued', tryNumber: 1, maxTries: 1,
    pool: 'default_pool', poolSlots: 1, priorityWeight: 1, isolation: 'thread', queuedAt: now, startedAt: now, endedAt: null,
    durationMs: null, pid: 4242, exitCode: null, signal: null, error: null, peakRssBytes: null, cpuMs: null,
    lastHeartbeatAt: now, queuedBy: 'bench', nextRetryAt: null,
  };
}

/** The statements of one dialect, both ways. `states` is how a set of states is passed. */
function statements(db, t, dialect) {
  const p = sql.placeholder;
  const ti = t.taskInstance;
  // A set of states is one parameter (JSON text for SQLite, an array for PostgreSQL), as in kiln's store.
  const one = (value) => (Array.isArray(value) ? sql.param(value) : value);
  const inStates = (value) => (dialect === 'sqlite' ? sql`${ti.state} in (select value from json_each(${value}))` : sql`${ti.state} = any(${one(value)}::text[])`);
  const statesValue = (states) => (dialect === 'sqlite' ? JSON.stringify(states) : states);
  const casWhere = (key) => and(eq(ti.dagId, key.dagId), eq(ti.runId, key.runId), eq(ti.taskId, key.taskId), eq(ti.mapIndex, -1), eq(ti.tryNumber, key.expectTryNumber), inStates(key.expectStates));
  const setOf = (row) => Object.fromEntries(MUTABLE.map((f) => [f, row[f]]));
  const setPlaceholders = Object.fromEntries(MUTABLE.map((f) => [f, sql`${p(f)}`]));
  const name = (n) => (dialect === 'postgres' ? [`bench_${n}`] : []);
  const exec = (q, values) => (dialect === 'sqlite' ? q.run(values) : q.execute(values));

  const casPrepared = db.update(ti).set(setPlaceholders).where(casWhere({ dagId: p('dagId'), runId: p('runId'), taskId: p('taskId'), expectTryNumber: p('expectTryNumber'), expectStates: p('expectStates') })).prepare(...name('cas'));
  const xcomPrepared = db.insert(t.xcom).values({ dagId: sql`${p('dagId')}`, runId: sql`${p('runId')}`, taskId: sql`${p('taskId')}`, value: sql`${p('value')}` })
    .onConflictDoUpdate({ target: [t.xcom.dagId, t.xcom.runId, t.xcom.taskId, t.xcom.mapIndex], set: { value: sql`excluded.value` } }).prepare(...name('xcom'));
  const expect = statesValue(['queued', 'running']);
  return {
    // Arguments are built before the clock starts: what is timed is building/preparing the SQL and running it.
    cas: {
      arg: (row) => ({ row, values: { ...setOf(row), dagId: row.dagId, runId: row.runId, taskId: row.taskId, expectTryNumber: 1, expectStates: expect } }),
      prepared: (a) => exec(casPrepared, a.values),
      unprepared: (a) => {
        const q = db.update(ti).set(setOf(a.row)).where(casWhere({ dagId: a.row.dagId, runId: a.row.runId, taskId: a.row.taskId, expectTryNumber: 1, expectStates: expect }));
        return dialect === 'sqlite' ? q.run() : q.execute();
      },
    },
    xcom: {
      arg: (x) => x,
      prepared: (x) => exec(xcomPrepared, x),
      unprepared: (x) => {
        const q = db.insert(t.xcom).values(x).onConflictDoUpdate({ target: [t.xcom.dagId, t.xcom.runId, t.xcom.taskId, t.xcom.mapIndex], set: { value: sql`excluded.value` } });
        return dialect === 'sqlite' ? q.run() : q.execute();
      },
    },
  };
}

let seq = 0;
const nextXcom = () => ({ dagId: DAG, runId: RUN, taskId: `x${++seq}`, value: `{"n":${seq}}` });

async function seed(store) {
  const now = Date.now();
  await store.upsertDag({ dagId: DAG, file: '/bench.ts', version: 'v1', serialized: { dagId: DAG, schedule: null, startDate: null, catchup: false, maxActiveRuns: 16, maxActiveTasks: 16, params: {}, tags: [], description: null, tasks: [] } });
  await store.createRun(
    { dagId: DAG, runId: RUN, runType: 'manual', logicalDate: now, dataIntervalStart: now, dataIntervalEnd: now, state: 'running', params: {}, dagVersion: 'v1', queuedAt: now, startedAt: now, endedAt: null, claimedBy: null },
    Array.from({ length: ROWS }, (_, i) => tiRow(i, 0)),
  );
}

/** One measurement: `n` statements, autocommit or in one transaction; returns statements/s. */
function measureFor(dialect, handle) {
  return async (fn, n, batched, makeArg) => {
    const args = Array.from({ length: n }, (_, i) => makeArg(i));
    const t0 = performance.now();
    if (dialect === 'sqlite') {
      if (batched) handle.transaction(() => { for (const a of args) fn(a); }).immediate();
      else for (const a of args) fn(a);
    } else {
      if (batched) await handle.query('BEGIN');
      for (const a of args) await fn(a);
      if (batched) await handle.query('COMMIT');
    }
    return n / ((performance.now() - t0) / 1000);
  };
}

export async function run({ scale, log, tmpDir }) {
  const reps = pick(scale, { smoke: 1, quick: 2, full: 7 });
  const counts = {
    sqlite: { autocommit: pick(scale, { smoke: 200, quick: 1_000, full: 5_000 }), batched: pick(scale, { smoke: 500, quick: 3_000, full: 15_000 }) },
    postgres: { autocommit: pick(scale, { smoke: 100, quick: 300, full: 1_500 }), batched: pick(scale, { smoke: 200, quick: 600, full: 3_000 }) },
  };
  const dialects = [];
  // SQLite: a scratch file with kiln's schema (WAL, synchronous NORMAL, as the store opens it).
  const file = join(tmpDir, 'prepared.db');
  const store = await createStore(`sqlite:${file}`);
  await store.migrate();
  await seed(store);
  await store.close();
  const sqlite = new Database(file, { timeout: 5000 });
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  dialects.push({ dialect: 'sqlite', handle: sqlite, s: statements(drizzleSqlite({ client: sqlite }), sqliteSchema, 'sqlite'), close: async () => sqlite.close() });

  // PostgreSQL: a schema of our own, one connection (prepared statements live per connection).
  let pgNote = null;
  const schema = `kiln_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  admin.on('error', () => {});
  try {
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; CREATE SCHEMA "${schema}"`);
    const u = new URL(POSTGRES_URL);
    u.searchParams.set('schema', schema);
    const pgStore = await createStore(u.toString());
    await pgStore.migrate();
    await seed(pgStore);
    await pgStore.close();
    const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await client.connect();
    dialects.push({ dialect: 'postgres', handle: client, s: statements(drizzlePg({ client }), pgSchema, 'postgres'), close: () => client.end() });
  } catch (err) {
    pgNote = `PostgreSQL at ${POSTGRES_URL} not measured: ${err.message}`;
    log(pgNote);
  }

  const results = [];
  try {
    for (const { dialect, handle, s } of dialects) {
      const measure = measureFor(dialect, handle);
      for (const statement of ['cas', 'xcom']) {
        for (const mode of ['autocommit', 'batched']) {
          const n = counts[dialect][mode];
          let row = 0;
          const arg = statement === 'cas' ? () => s.cas.arg(tiRow(row++ % ROWS, row)) : () => s.xcom.arg(nextXcom());
          // Warm-up both ways (JIT; for PostgreSQL the first execution of the named statement parses it).
          await measure(s[statement].prepared, Math.min(n, 200), mode === 'batched', arg);
          await measure(s[statement].unprepared, Math.min(n, 200), mode === 'batched', arg);
          const out = await interleave(reps, {
            prepared: { run: () => measure(s[statement].prepared, n, mode === 'batched', arg) },
            unprepared: { run: () => measure(s[statement].unprepared, n, mode === 'batched', arg) },
          });
          const r = { dialect, statement, mode, n, prepared: summary(out.prepared), unprepared: summary(out.unprepared) };
          r.speedup = ratio(r.prepared.median, r.unprepared.median);
          results.push(r);
          log(`${dialect} ${statement} ${mode}: prepared ${fmt(r.prepared.median)}/s, unprepared ${fmt(r.unprepared.median)}/s (${fmt(r.speedup)}x)`);
        }
      }
    }
  } finally {
    for (const d of dialects) await d.close();
    if (dialects.some((d) => d.dialect === 'postgres')) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await admin.end().catch(() => {});
  }
  const label = (r) => `${r.dialect} ${r.statement === 'cas' ? 'TI compare-and-set' : 'XCom insert'}, ${r.mode}`;
  return {
    params: { reps, counts, rows: ROWS, postgres: POSTGRES_URL.replace(/\/\/[^@]*@/, '//***@') },
    pgNote,
    results,
    headline: results.filter((r) => r.statement === 'cas').map((r) => ({ label: `prepared vs unprepared: ${label(r)}`, value: `${fmt(r.prepared.median)} vs ${fmt(r.unprepared.median)} statements/s (${fmt(r.speedup)}x)` })),
  };
}

export function render(r) {
  const label = (x) => `${x.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${x.statement === 'cas' ? 'TI compare-and-set UPDATE' : 'XCom INSERT ... ON CONFLICT'}, ${x.mode}`;
  const md = [
    `Statements per second, median (min-max) of ${r.params.reps} interleaved rounds. Autocommit: ${fmt(r.params.counts.sqlite.autocommit)} (SQLite) / ${fmt(r.params.counts.postgres.autocommit)} (PostgreSQL) statements, each its own transaction; batched: ${fmt(r.params.counts.sqlite.batched)} / ${fmt(r.params.counts.postgres.batched)} statements in one transaction. The task-instance table holds ${fmt(r.params.rows)} rows of one run; every compare-and-set applies. SQLite in WAL mode with synchronous=NORMAL (as kiln opens it); PostgreSQL 127.0.0.1 over TCP, one connection.`,
    '',
    table(['statement', 'prepared once', 'built each time', 'speedup'], r.results.map((x) => [label(x), fmtSummary(x.prepared, '/s'), fmtSummary(x.unprepared, '/s'), fmtRatio(x.speedup)])),
    '',
    r.pgNote ? `**${r.pgNote}**` : '',
    'The seed (Airflow 1.10, SQLAlchemy baked queries): per-file scheduling 2-5x faster. DESIGN.md (drizzle + better-sqlite3 on this machine kind): 3x autocommit, 13x batched.',
  ].join('\n');
  const charts = [{
    name: 'prepared-speedup',
    alt: 'Prepared over unprepared speedup',
    svg: barChart({
      title: 'Prepared once vs built each time: speedup', unit: 'x',
      bars: r.results.map((x) => ({ label: `${x.dialect} ${x.statement} ${x.mode}`, value: x.speedup, color: x.dialect === 'sqlite' ? colorFor('thread') : colorFor('process'), text: fmtRatio(x.speedup) })),
      target: { value: 1, label: 'no gain' },
    }),
  }];
  return { markdown: md, charts };
}
