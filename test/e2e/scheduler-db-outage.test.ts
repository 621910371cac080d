/**
 * PostgreSQL restarted under a running scheduler (a server of the test's own: the shared one
 * must never be restarted). The scheduler must wait the outage out: log it once, keep the
 * results of tries that end meanwhile, queue nothing new, write what it kept once the server
 * is back, and never run a task instance twice; past half the takeover time it must give its
 * runs up (another scheduler may take them) and take them again afterwards, never running
 * two tries of one task at once. Skipped with a notice when no PostgreSQL server binaries are
 * installed, unless CI is set (then it fails).
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { runKiln, scratchProject } from '../helpers/cli.js';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { createTestSchema, postgresTestUrl, type TestSchema } from '../helpers/postgres.js';
import { exitOf, FIXTURES, readRecords, startScheduler, until, withStore, type Execution, type SchedulerProcess } from '../fixtures/scheduler/harness.js';

const TASKS = ['a', 'b', 'c', 'e', 'f', 'g'];
const server = await ownPostgres('the scheduler database-outage tests');
// The shared server, for killing this test's own connections only (never restarted).
const sharedUrl = await postgresTestUrl('the scheduler connection-kill test');
let schema: TestSchema | undefined;
afterAll(async () => {
  await server?.destroy();
  await schema?.drop();
});

interface Scenario {
  url: string;
  sideFile: string;
  scheduler: SchedulerProcess;
}

/** A migrated schema, a scheduler on it, and `runs` runs of the outage DAG triggered. */
async function begin(url: string, name: string, args: string[], runs: number, sleepMs: number): Promise<Scenario> {
  const cwd = scratchProject(`kiln-${name}-`);
  const sideFile = join(cwd, 'executions.jsonl');
  const env = { KILN_DATABASE_URL: url, KILN_DAGS_FOLDER: join(FIXTURES, 'outage'), KILN_PARALLELISM: '4', KILN_SCHEDULER_INTERVAL: '100ms' };
  const migrate = await runKiln(['db', 'migrate'], { cwd, env });
  expect(migrate.code, migrate.stderr).toBe(0);
  const scheduler = startScheduler(['--executor', 'process', ...args], { cwd, env });
  await until(() => /scheduler \S+ started/.test(scheduler.output()), 'the scheduler to start');
  const trigger = await runKiln(['dags', 'trigger', 'outage', '--count', String(runs), '--params', JSON.stringify({ sideFile, sleepMs })], { cwd, env });
  expect(trigger.code, trigger.stderr).toBe(0);
  return { url, sideFile, scheduler };
}

/** Stops the server, keeps it down for `downMs`, starts it again; returns when each step happened. */
async function restart(server: OwnPostgres, downMs: number) {
  const stopAt = Date.now();
  await server.stop();
  const stoppedAt = Date.now();
  // The outage itself: its length is the point, there is no event to wait for.
  await new Promise((resolve) => setTimeout(resolve, downMs));
  const restartAt = Date.now();
  await server.start();
  return { stopAt, stoppedAt, restartAt, backAt: Date.now() };
}

async function allRunsSucceed(url: string, runs: number): Promise<void> {
  await withStore(url, (store) =>
    until(async () => {
      const rows = await store.listRuns({ dagId: 'outage' });
      return rows.length === runs && rows.every((r) => r.state === 'success');
    }, `all ${runs} runs to succeed`, 120_000),
  );
}

function count(text: string, pattern: RegExp): number {
  return text.split('\n').filter((line) => pattern.test(line)).length;
}

/** Every try's start and end, per task instance (`run/task`), in try order. */
function triesPerTi(records: Execution[]): Map<string, Array<{ try: number; start: number; end: number | undefined }>> {
  const out = new Map<string, Array<{ try: number; start: number; end: number | undefined }>>();
  for (const r of records) {
    const key = `${r.run}/${r.task}`;
    const tries = out.get(key) ?? [];
    out.set(key, tries);
    let t = tries.find((x) => x.try === r.try);
    if (!t) tries.push((t = { try: r.try, start: Number.NaN, end: undefined }));
    if (r.event === 'start') t.start = r.t;
    else t.end = r.t;
  }
  for (const tries of out.values()) tries.sort((a, b) => a.try - b.try);
  return out;
}

describe.skipIf(server === null)('a scheduler while its PostgreSQL restarts', () => {
  it('waits the outage out: all runs succeed, every task instance started once with try 1, the outage logged once, no exit', async () => {
    const RUNS = 6;
    const { url, sideFile, scheduler } = await begin(`${server!.url}?schema=kiln_outage`, 'kiln_outage', [], RUNS, 300);
    let window: Awaited<ReturnType<typeof restart>>;
    try {
      await until(() => readRecords(sideFile).filter((r) => r.event === 'start').length >= 6, 'tasks to be running');
      window = await restart(server!, 2000);
      await allRunsSucceed(url, RUNS);
      expect(scheduler.child.exitCode, `the scheduler exited:\n${scheduler.output()}`).toBeNull();
    } finally {
      scheduler.child.kill('SIGTERM');
    }
    const out = scheduler.output();
    expect((await exitOf(scheduler)).code, out).toBe(0);
    expect(count(out, /the database is unreachable/), out).toBe(1);
    expect(count(out, /the database is back after/), out).toBe(1);
    expect(count(out, /Z error /), out).toBe(0);
    expect(out).not.toMatch(/changed by another process|no heartbeat recorded/);

    const records = readRecords(sideFile);
    const starts = records.filter((r) => r.event === 'start');
    const perTi = new Map<string, number>();
    for (const r of starts) perTi.set(`${r.run}/${r.task}`, (perTi.get(`${r.run}/${r.task}`) ?? 0) + 1);
    expect(perTi.size).toBe(RUNS * TASKS.length);
    expect([...perTi].filter(([, n]) => n !== 1)).toEqual([]);
    expect(starts.filter((r) => r.try !== 1)).toEqual([]);
    // The restart hit running tries: some ended while the server was down (their results were kept)...
    expect(records.filter((r) => r.event === 'end' && r.t > window!.stopAt && r.t < window!.restartAt).length).toBeGreaterThan(0);
    // ...and none started while it was down: a try reaches the executor only after its queued
    // state is committed (the second of slack covers a try handed over just before the stop).
    expect(starts.filter((r) => r.t > window!.stoppedAt + 1000 && r.t < window!.restartAt)).toEqual([]);
    await withStore(url, async (store) => {
      for (const run of await store.listRuns({ dagId: 'outage' })) {
        const tis = await store.getTaskInstances('outage', run.runId);
        expect(tis.map((t) => [t.taskId, t.state, t.tryNumber])).toEqual(TASKS.map((t) => [t, 'success', 1]));
      }
    });
  }, 180_000);

  it('past half the takeover time gives its runs up (tries cancelled) and takes them again when the database is back, never two tries of a task at once', async () => {
    const RUNS = 2;
    // --takeover-after 2s: fenced 1 s into the outage, while 3-second tries run.
    const { url, sideFile, scheduler } = await begin(`${server!.url}?schema=kiln_outage_fenced`, 'kiln_outage_fenced', ['--takeover-after', '2s'], RUNS, 3000);
    try {
      await until(() => readRecords(sideFile).filter((r) => r.event === 'start').length >= 2, 'tasks to be running');
      await restart(server!, 2500);
      await allRunsSucceed(url, RUNS);
      expect(scheduler.child.exitCode, `the scheduler exited:\n${scheduler.output()}`).toBeNull();
    } finally {
      scheduler.child.kill('SIGTERM');
    }
    const out = scheduler.output();
    expect((await exitOf(scheduler)).code, out).toBe(0);
    expect(count(out, /no heartbeat recorded for \d+s: another scheduler may take/), out).toBe(1);
    expect(count(out, /heartbeat recorded again/), out).toBe(1);
    expect(count(out, /the database is unreachable/), out).toBe(1);
    expect(count(out, /Z error /), out).toBe(0);

    const perTi = triesPerTi(readRecords(sideFile));
    expect(perTi.size).toBe(RUNS * TASKS.length);
    for (const [ti, tries] of perTi) {
      for (const t of tries) expect(t.end, `${ti} try ${t.try} never ended`).toBeDefined();
      // A try cancelled at the fence ran to its end (the task ignores cancellation) before the next began.
      for (let i = 1; i < tries.length; i++) expect(tries[i]!.start, `${ti}: try ${tries[i]!.try} overlaps try ${tries[i - 1]!.try}`).toBeGreaterThanOrEqual(tries[i - 1]!.end!);
    }
    // The fence cancelled tries that were running: those task instances ran again.
    expect([...perTi.values()].some((tries) => tries.length > 1)).toBe(true);
    await withStore(url, async (store) => {
      for (const run of await store.listRuns({ dagId: 'outage' })) {
        for (const ti of await store.getTaskInstances('outage', run.runId)) {
          expect(ti.state).toBe('success');
          expect(ti.tryNumber).toBe(perTi.get(`${run.runId}/${ti.taskId}`)!.at(-1)!.try);
        }
      }
    });
  }, 180_000);
});

describe.skipIf(sharedUrl === null)('a scheduler whose PostgreSQL connections are killed', () => {
  it('reconnects (statements prepared again on the new connections): all runs succeed, every task instance started once with try 1', async () => {
    const RUNS = 4;
    schema = await createTestSchema(sharedUrl!, 'kiln_conn_kill');
    // Only this scheduler's connections carry this name: the kill touches nobody else's.
    const appName = `kiln_kill_${process.pid}`;
    const url = `${schema.url}&application_name=${appName}`;
    const { sideFile, scheduler } = await begin(url, 'kiln_conn_kill', [], RUNS, 300);
    const admin = new pg.Client({ connectionString: sharedUrl! });
    admin.on('error', () => {});
    await admin.connect();
    let killed = 0;
    try {
      for (let round = 0; round < 4; round++) {
        await until(() => readRecords(sideFile).filter((r) => r.event === 'start').length >= 3 + 3 * round, `tasks to be running (round ${round}, ${killed} connections killed so far)`).catch((err: Error) => {
          // Kept for the next look: this wait timed out once in CI under load.
          throw new Error(`${err.message}\nscheduler output:\n${scheduler.output()}`);
        });
        const r = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [appName]);
        killed += r.rowCount ?? 0;
      }
      await allRunsSucceed(url, RUNS);
      expect(scheduler.child.exitCode, `the scheduler exited:\n${scheduler.output()}`).toBeNull();
    } finally {
      await admin.end();
      scheduler.child.kill('SIGTERM');
    }
    const out = scheduler.output();
    expect((await exitOf(scheduler)).code, out).toBe(0);
    expect(killed).toBeGreaterThan(0);
    // Each outage (a call that met a killed connection) is logged once when it starts and once when it ends.
    expect(count(out, /the database is unreachable/), out).toBe(count(out, /the database is back after/));
    expect(count(out, /Z error /), out).toBe(0);
    const starts = readRecords(sideFile).filter((r) => r.event === 'start');
    expect(starts).toHaveLength(RUNS * TASKS.length);
    expect(new Set(starts.map((r) => `${r.run}/${r.task}`)).size).toBe(RUNS * TASKS.length);
    expect(starts.filter((r) => r.try !== 1)).toEqual([]);
  }, 180_000);
});
