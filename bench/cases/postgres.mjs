/**
 * Case 11, PostgreSQL end to end: kiln on the PostgreSQL server at 127.0.0.1:5432 (a database
 * of the case's own, created with CREATE DATABASE and dropped at the end; see
 * bench/lib/postgres-bench.mjs), in two parts.
 *
 * 1. The same 40 runs x 40 noop tasks as case 1 (the `wide` DAG), thread executor, end to end
 *    (run engine, executor, every state change committed), on PostgreSQL and on SQLite, each
 *    a warm context in a mode server of its own (bench/lib/mode-server.mjs), interleaved per
 *    repetition. The PostgreSQL side runs with bench/lib/pg-count.mjs preloaded, so its round
 *    trips (statements, BEGINs) per task instance are counted; the CPU of the server processes
 *    serving it is read from /proc (found by their application_name).
 * 2. Two `kiln scheduler` processes sharing one PostgreSQL database against one, on 80 runs x
 *    40 noop tasks queued first (`kiln db migrate`, `kiln dags trigger <dag> --count 80`, a
 *    fresh schema per repetition), each `kiln scheduler --executor thread --exit-when-idle`
 *    from dist/ with KILN_DATABASE_URL and KILN_DAGS_FOLDER only (kiln's defaults otherwise:
 *    parallelism, and each scheduler driving at most max(16, 2 x parallelism) runs at once;
 *    the DAG's maxActiveRuns is 80 so the DAG does not cap it). Interleaved (one, two, two,
 *    one, ...). Wall time from starting the scheduler processes to the last run's end (its
 *    ended_at in the database); TI/s = task instances / that. Beside it the run phase (first
 *    run started to last run ended), the processes' exit, their CPU (process.resourceUsage()
 *    at exit) and the server's, round trips, and the load average before and after.
 *
 * Without a PostgreSQL server answering, the case is skipped with a note (the result says so).
 * `--options '{"parts":["schedulers"],"parallelism":4}'` runs one part, or other sizes.
 */
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { startModeServer } from '../lib/mode-client.mjs';
import { addWaits, backendCpu, cliEnv, describeWaits, masked, openBenchDatabase, PG_COUNT, POSTGRES_URL, rawLatency, runKiln, sleep, startSchedulers, waitSampler } from '../lib/postgres-bench.mjs';
import { fmt, fmtPercent, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { median, percentile, ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'postgres';
export const title = 'PostgreSQL end to end: 40 x 40 noop against SQLite, and two schedulers sharing one database (case 11)';
export const PARTS = ['e2e', 'schedulers'];
const TASKS = 40;
const APP_E2E = 'kiln_bench_e2e';
const APP_ASYNC = 'kiln_bench_e2e_async';
const APP_SCHED = 'kiln_bench_sched';

export async function run({ scale, log, tmpDir, options = {} }) {
  const parts = options.parts ?? PARTS;
  const e2e = { runs: pick(scale, { smoke: 2, quick: 40, full: 40 }), reps: pick(scale, { smoke: 1, quick: 3, full: 7 }) };
  const sched = { runs: pick(scale, { smoke: 4, quick: 80, full: 80 }), reps: pick(scale, { smoke: 1, quick: 2, full: 5 }) };
  const params = { scale, tasks: TASKS, parts, e2e, schedulers: sched, postgres: masked(POSTGRES_URL), cores: cpus().length, ...(options.parallelism ? { parallelism: options.parallelism } : {}) };
  const db = await openBenchDatabase();
  if (db.skipped) {
    const skipped = `${db.skipped}: the postgres case was not measured`;
    log(`NOTICE: ${skipped}`);
    return { params, skipped };
  }
  params.server = { version: db.server, settings: db.settings, database: db.name };
  log(`PostgreSQL ${db.server} at ${masked(POSTGRES_URL)}: database ${db.name} (synchronous_commit ${db.settings.synchronous_commit}, fsync ${db.settings.fsync})`);
  try {
    const out = { params };
    // The raw costs here, for reading the rest: a round trip and a committed INSERT.
    out.raw = await rawLatency(db, scale === 'smoke' ? { roundTrips: 30, commits: 20 } : {});
    log(`raw: round trip ${fmt(out.raw.roundTripMs.median)} ms (p90 ${fmt(out.raw.roundTripMs.p90)}), committed INSERT ${fmt(out.raw.commitMs.median)} ms (p90 ${fmt(out.raw.commitMs.p90)})`);
    if (parts.includes('e2e')) out.e2e = await endToEnd({ db, e2e, tmpDir, log, options });
    if (parts.includes('schedulers')) out.schedulers = await twoSchedulers({ db, sched, tmpDir, log, options });
    return out;
  } finally {
    await db.drop();
    log(`dropped database ${db.name}`);
  }
}

// ---- part 1: 40 x 40 on PostgreSQL against SQLite ------------------------------------

async function endToEnd({ db, e2e, tmpDir, log, options }) {
  const dir = join(tmpDir, 'e2e');
  mkdirSync(dir, { recursive: true });
  const file = writeDag(dir, { dagId: `bench_wide${TASKS}_noop`, shape: 'wide', tasks: TASKS, work: 'noop' });
  const extra = options.parallelism ? { parallelism: options.parallelism } : {};
  const servers = {};
  try {
    servers.sqlite = startModeServer('thread-sqlite');
    servers.postgres = startModeServer('thread-postgres', { execArgv: ['--import', PG_COUNT] });
    // Diagnostic, not judged: the same, with the session's synchronous_commit off (a libpq
    // `options` setting in the URL, nothing changed on the server): a COMMIT then returns before
    // its WAL reaches the disk, so the difference is what waiting for the disk costs.
    servers.postgresAsync = startModeServer('thread-postgres-async', { execArgv: ['--import', PG_COUNT] });
    const asyncUrl = new URL(db.schemaUrl('e2e_async', APP_ASYNC));
    asyncUrl.searchParams.set('options', '-c synchronous_commit=off');
    const info = {
      sqlite: await servers.sqlite.call('open', { home: join(dir, 'sqlite'), config: { executor: 'thread', ...extra } }),
      postgres: await servers.postgres.call('open', { home: join(dir, 'postgres'), config: { executor: 'thread', databaseUrl: db.schemaUrl('e2e', APP_E2E), ...extra } }),
      postgresAsync: await servers.postgresAsync.call('open', { home: join(dir, 'postgres-async'), config: { executor: 'thread', databaseUrl: asyncUrl.toString(), ...extra } }),
    };
    for (const s of Object.values(servers)) {
      await s.call('load', { file });
      const r = await s.call('run', { file, runs: Math.min(e2e.runs, 8) }); // warm-up
      if (r.isolations.length !== 1 || r.isolations[0] !== 'thread') throw new Error(`${s.name}: tasks ran with isolation ${r.isolations.join(', ')}`);
    }
    log(`e2e: both sides open and warm (parallelism ${info.sqlite.parallelism} / ${info.postgres.parallelism})`);
    const last = {};
    const onPostgres = (side, app) => async () => {
      const cpu = backendCpu(db, app);
      await cpu.start();
      const waits = waitSampler(db, app);
      let r;
      try {
        r = await servers[side].run({ file, runs: e2e.runs });
      } finally {
        r = { ...r, waits: await waits.stop() };
      }
      await cpu.sample();
      return (last[side] = { ...r, serverCpuMs: cpu.totalMs(), backends: cpu.backends() });
    };
    const out = await interleave(e2e.reps, {
      sqlite: { run: async () => (last.sqlite = await servers.sqlite.run({ file, runs: e2e.runs })) },
      postgres: { run: onPostgres('postgres', APP_E2E) },
      postgresAsync: { run: onPostgres('postgresAsync', APP_ASYNC) },
    }, { onRound: (round) => log(`e2e ${e2e.runs}x${TASKS}: round ${round + 1}/${e2e.reps}: sqlite ${fmt(last.sqlite?.tiPerSec)} TI/s, postgres ${fmt(last.postgres?.tiPerSec)} TI/s (synchronous_commit off: ${fmt(last.postgresAsync?.tiPerSec)}) (load ${loadavg()[0].toFixed(2)})`) });
    const side = (list) => {
      const overhead = list.flatMap((r) => r.overheadMs);
      const tis = list.reduce((s, r) => s + r.tis, 0);
      const res = {
        reps: list.length,
        tis: list[0]?.tis ?? 0,
        wallMs: summary(list.map((r) => r.wallMs)),
        tiPerSec: summary(list.map((r) => r.tiPerSec)),
        overheadMs: { p50: percentile(overhead, 50), p99: percentile(overhead, 99), n: overhead.length },
        peakRssBytes: median(list.map((r) => r.peakRssBytes)),
        cpuMsPerTi: list.reduce((s, r) => s + r.cpuMs, 0) / tis,
      };
      if (list[0]?.pgCounts) {
        const sum = (k) => list.reduce((s, r) => s + r.pgCounts[k], 0);
        res.roundTripsPerTi = sum('queries') / tis;
        res.transactionsPerTi = sum('begins') / tis;
        res.serverCpuMsPerTi = list.reduce((s, r) => s + r.serverCpuMs, 0) / tis;
        res.backends = Math.max(...list.map((r) => r.backends));
        res.waits = list.reduce((w, r) => addWaits(w, r.waits), {});
        const flushes = list.reduce((f, r) => ({ n: f.n + r.flushes.n, ms: f.ms + r.flushes.ms }), { n: 0, ms: 0 });
        // The engine writes one flush at a time: the share of the wall time with one in flight.
        res.flushes = { perTi: flushes.n / tis, meanMs: flushes.ms / flushes.n, inFlight: flushes.ms / list.reduce((s, r) => s + r.wallMs, 0) };
        res.statements = statementTimes(list.map((r) => r.pgCounts.byStatement), flushes.n);
      }
      return res;
    };
    const result = { parallelism: info.postgres.parallelism, runs: e2e.runs, tasks: TASKS, sqlite: side(out.sqlite), postgres: side(out.postgres), postgresAsync: side(out.postgresAsync) };
    result.ratio = ratio(result.postgres.tiPerSec.median, result.sqlite.tiPerSec.median);
    result.perRound = summary(out.postgres.map((r, i) => ratio(r.tiPerSec, out.sqlite[i]?.tiPerSec)).filter((x) => x !== null));
    result.asyncRatio = ratio(result.postgresAsync.tiPerSec.median, result.sqlite.tiPerSec.median);
    log(`e2e: postgres ${fmt(result.postgres.tiPerSec.median)} TI/s, sqlite ${fmt(result.sqlite.tiPerSec.median)} TI/s (${fmtPercent(result.ratio)}); ${fmt(result.postgres.roundTripsPerTi)} round trips and ${fmt(result.postgres.transactionsPerTi)} transactions per TI; server: ${describeWaits(result.postgres.waits)}; synchronous_commit off ${fmt(result.postgresAsync.tiPerSec.median)} TI/s (${fmtPercent(result.asyncRatio)})`);
    return result;
  } finally {
    for (const s of Object.values(servers)) await s.close();
  }
}

// ---- part 2: two schedulers sharing PostgreSQL against one -------------------------

async function twoSchedulers({ db, sched, tmpDir, log, options }) {
  const dir = join(tmpDir, 'schedulers');
  const dagsFolder = join(dir, 'dags');
  mkdirSync(dagsFolder, { recursive: true });
  const dagId = `bench_wide${TASKS}_noop`;
  writeDag(dagsFolder, { dagId, shape: 'wide', tasks: TASKS, work: 'noop', maxActiveRuns: Math.max(16, sched.runs) });
  const extraEnv = options.parallelism ? { KILN_PARALLELISM: String(options.parallelism) } : {};
  let seq = 0;

  /** One repetition: a fresh schema, `runs` runs queued, `count` schedulers until they exit. */
  const round = async (count, runs) => {
    const schema = `r${++seq}_${count}`;
    const databaseUrl = db.schemaUrl(schema, APP_SCHED);
    const home = join(dir, schema);
    mkdirSync(home, { recursive: true });
    const env = cliEnv({ KILN_DATABASE_URL: databaseUrl, KILN_DAGS_FOLDER: dagsFolder, ...extraEnv });
    try {
      await runKiln(['db', 'migrate'], { cwd: home, env });
      await runKiln(['dags', 'trigger', dagId, '--count', String(runs)], { cwd: home, env });
      const loadBefore = loadavg();
      const server = backendCpu(db, APP_SCHED);
      await server.start();
      const waits = waitSampler(db, APP_SCHED);
      const t0 = Date.now();
      const started = startSchedulers({ count, databaseUrl, dagsFolder, dir: home, extraEnv });
      let done = false;
      const exited = started.exited.finally(() => (done = true));
      let samples = 0;
      try {
        while (!done) {
          await Promise.race([exited.catch(() => {}), sleep(200)]);
          await server.sample();
          samples++;
        }
      } finally {
        started.kill();
      }
      const procs = await exited;
      const waitCounts = await waits.stop();
      const loadAfter = loadavg();
      for (const p of procs) if (p.code !== 0) throw new Error(`scheduler ${p.name} exited ${p.code}: ${p.output().trim().split('\n').slice(-5).join(' | ')}`);
      const q = (sql) => db.query(sql.replaceAll('$S', `"${schema}"`)).then((r) => r.rows);
      const [runRow] = await q(`SELECT count(*)::int AS n, count(*) FILTER (WHERE state = 'success')::int AS ok, min(started_at)::float8 AS first, max(ended_at)::float8 AS last FROM $S.dag_run`);
      const [tiRow] = await q(`SELECT count(*)::int AS n, count(*) FILTER (WHERE state = 'success')::int AS ok FROM $S.task_instance`);
      const byScheduler = await q(`SELECT s.pid, count(*)::int AS runs FROM $S.dag_run r JOIN $S.scheduler s ON s.id = r.claimed_by GROUP BY s.pid ORDER BY runs DESC`);
      if (runRow.ok !== runs || tiRow.ok !== runs * TASKS) throw new Error(`${count} scheduler(s): ${runRow.ok} of ${runs} runs and ${tiRow.ok} of ${runs * TASKS} task instances succeeded`);
      const wallMs = runRow.last - t0;
      const cpu = (p) => (p.counts ? (p.counts.resourceUsage.userCPUTime + p.counts.resourceUsage.systemCPUTime) / 1000 : 0);
      const schedulerCpuMs = procs.reduce((s, p) => s + cpu(p), 0);
      const exitMs = Math.max(...procs.map((p) => p.exitedAt)) - t0;
      const tis = tiRow.ok;
      return {
        schedulers: count,
        tis,
        wallMs,
        tiPerSec: tis / (wallMs / 1000),
        firstRunStartedMs: runRow.first - t0,
        runPhaseMs: runRow.last - runRow.first,
        runPhaseTiPerSec: tis / ((runRow.last - runRow.first) / 1000),
        exitMs,
        runsByScheduler: byScheduler.map((r) => r.runs),
        schedulerCpuMs,
        serverCpuMs: server.totalMs(),
        backends: server.backends(),
        cpuSamples: samples,
        roundTrips: procs.reduce((s, p) => s + (p.counts?.queries ?? 0), 0),
        byStatement: procs.map((p) => p.counts?.byStatement ?? {}),
        transactions: procs.reduce((s, p) => s + (p.counts?.begins ?? 0), 0),
        waits: waitCounts,
        maxRssBytes: procs.map((p) => (p.counts ? p.counts.resourceUsage.maxRSS * 1024 : 0)),
        loadBefore,
        loadAfter,
      };
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    }
  };

  if (sched.runs >= 40) {
    // Warm-up (not measured): node, kiln's modules and the DAG file in the page cache, the server's catalogs.
    await round(1, 8);
    log('schedulers: warm-up done');
  }
  const last = {};
  const out = await interleave(sched.reps, {
    one: { run: async () => (last.one = await round(1, sched.runs)) },
    two: { run: async () => (last.two = await round(2, sched.runs)) },
  }, { onRound: (r) => log(`schedulers ${sched.runs}x${TASKS}: round ${r + 1}/${sched.reps}: one ${fmt(last.one?.tiPerSec)} TI/s, two ${fmt(last.two?.tiPerSec)} TI/s (load ${loadavg()[0].toFixed(2)})`) });
  const side = (list) => {
    const tis = list.reduce((s, r) => s + r.tis, 0);
    return {
      reps: list.length,
      tis: list[0]?.tis ?? 0,
      wallMs: summary(list.map((r) => r.wallMs)),
      tiPerSec: summary(list.map((r) => r.tiPerSec)),
      firstRunStartedMs: summary(list.map((r) => r.firstRunStartedMs)),
      runPhaseMs: summary(list.map((r) => r.runPhaseMs)),
      runPhaseTiPerSec: summary(list.map((r) => r.runPhaseTiPerSec)),
      exitMs: summary(list.map((r) => r.exitMs)),
      runsByScheduler: list.map((r) => r.runsByScheduler),
      schedulerCpuMsPerTi: list.reduce((s, r) => s + r.schedulerCpuMs, 0) / tis,
      serverCpuMsPerTi: list.reduce((s, r) => s + r.serverCpuMs, 0) / tis,
      roundTripsPerTi: list.reduce((s, r) => s + r.roundTrips, 0) / tis,
      transactionsPerTi: list.reduce((s, r) => s + r.transactions, 0) / tis,
      waits: list.reduce((w, r) => addWaits(w, r.waits), {}),
      statements: statementTimes(list.flatMap((r) => r.byStatement), list.reduce((s, r) => s + r.transactions, 0)),
      // Cores busy with the schedulers and their server processes, over the time to the last exit.
      coresBusy: median(list.map((r) => (r.schedulerCpuMs + r.serverCpuMs) / r.exitMs)),
      maxRssBytes: median(list.flatMap((r) => r.maxRssBytes)),
      load: list.map((r) => ({ before: r.loadBefore[0], after: r.loadAfter[0] })),
    };
  };
  const result = { runs: sched.runs, tasks: TASKS, one: side(out.one), two: side(out.two) };
  result.ratio = ratio(result.two.tiPerSec.median, result.one.tiPerSec.median);
  result.perRound = summary(out.two.map((r, i) => ratio(r.tiPerSec, out.one[i]?.tiPerSec)).filter((x) => x !== null));
  result.runPhaseRatio = ratio(result.two.runPhaseTiPerSec.median, result.one.runPhaseTiPerSec.median);
  log(`schedulers: one ${fmt(result.one.tiPerSec.median)} TI/s, two ${fmt(result.two.tiPerSec.median)} TI/s (${fmtRatio(result.ratio)}; per round ${fmtRatio(result.perRound.median)}); server, one: ${describeWaits(result.one.waits)}; two: ${describeWaits(result.two.waits)}`);
  return result;
}

/**
 * Where the time in PostgreSQL calls went, per statement (kiln's prepared statements by name,
 * BEGIN, COMMIT), summed over repetitions (and processes): calls and ms from call to answer,
 * per flush (`per`: the flushes or transactions to divide by), most time first.
 */
function statementTimes(byStatementList, per) {
  const all = {};
  for (const by of byStatementList) {
    for (const [k, v] of Object.entries(by ?? {})) {
      const e = (all[k] ??= { n: 0, ms: 0 });
      e.n += v.n;
      e.ms += v.ms;
    }
  }
  const total = Object.values(all).reduce((s, e) => s + e.ms, 0);
  return Object.entries(all)
    .map(([name, e]) => ({ name, n: e.n, ms: e.ms, meanMs: e.ms / e.n, perFlush: per ? e.n / per : null, msPerFlush: per ? e.ms / per : null, share: total ? e.ms / total : null }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 10);
}

const describeStatements = (list, top = 6) => (list ?? []).slice(0, top).map((x) => `\`${x.name}\` ${fmt(x.meanMs)} ms x ${fmt(x.perFlush)} (${fmtPercent(x.share)})`).join(', ');

// ---- report -------------------------------------------------------------------------

export function render(r) {
  const p = r.params;
  if (r.skipped) return { markdown: `**Not measured.** ${r.skipped}.`, charts: [] };
  const md = [];
  const s = p.server?.settings ?? {};
  md.push(`PostgreSQL ${p.server?.version} at ${p.postgres}, a database of the case's own (dropped at the end); server settings as found: synchronous_commit ${s.synchronous_commit}, fsync ${s.fsync}, shared_buffers ${s.shared_buffers} (8 kB pages), autovacuum ${s.autovacuum}. The server shares the machine's ${p.cores} cores with everything else here. Round trips are counted in the kiln process (every node-postgres query call: statements, BEGIN, COMMIT); server CPU is the CPU of the PostgreSQL processes serving kiln's connections, from /proc.${r.raw ? ` Raw costs on this server, one connection, one statement at a time: a round trip (\`SELECT 1\`) ${fmt(r.raw.roundTripMs.median)} ms (p90 ${fmt(r.raw.roundTripMs.p90)}), a committed one-row INSERT ${fmt(r.raw.commitMs.median)} ms (p90 ${fmt(r.raw.commitMs.p90)}).` : ''}`);
  md.push('');
  const charts = [];
  if (r.e2e) {
    const e = r.e2e;
    md.push(`**${e.runs} runs x ${e.tasks} noop tasks, thread, end to end** (case 1's \`wide\` DAG; a warm context per side in a process of its own, parallelism ${e.parallelism}; ${e.sqlite.reps} interleaved repetitions a side):`);
    md.push('');
    const row = (name, x) => [name, fmtSummary(x.wallMs, 'ms'), fmtSummary(x.tiPerSec), `${fmt(x.overheadMs.p50)} / ${fmt(x.overheadMs.p99)}`, fmt(x.cpuMsPerTi), x.serverCpuMsPerTi === undefined ? '-' : fmt(x.serverCpuMsPerTi), x.roundTripsPerTi === undefined ? '-' : `${fmt(x.roundTripsPerTi)} / ${fmt(x.transactionsPerTi)}`];
    md.push(table(['database', 'wall', 'TI/s', 'overhead per try p50 / p99 (ms)', 'kiln process CPU per TI (ms)', 'server CPU per TI (ms)', 'round trips / transactions per TI'], [
      row('SQLite (a file)', e.sqlite),
      row('PostgreSQL (127.0.0.1, TCP)', e.postgres),
      ...(e.postgresAsync ? [row('PostgreSQL, session synchronous_commit off (diagnostic)', e.postgresAsync)] : []),
    ]));
    md.push('');
    md.push(`**PostgreSQL / SQLite: ${fmtPercent(e.ratio)}** of the TI/s (medians; per round ${fmtPercent(e.perRound.median)}, ${fmtPercent(e.perRound.min)}-${fmtPercent(e.perRound.max)}).${e.postgresAsync ? ` With the session's synchronous_commit off (not judged: a COMMIT no longer waits for its WAL to reach the disk, so a crash of the server may lose the last commits), ${fmtPercent(e.asyncRatio)}.` : ''}`);
    md.push('');
    if (e.postgres.flushes) {
      md.push(`The run engine writes one flush (one transaction) at a time. On PostgreSQL: ${fmt(e.postgres.flushes.perTi)} flushes per task instance, ${fmt(e.postgres.flushes.meanMs)} ms each on average, and a flush was in flight ${fmtPercent(e.postgres.flushes.inFlight)} of the wall time${e.postgresAsync?.flushes ? ` (synchronous_commit off: ${fmt(e.postgresAsync.flushes.meanMs)} ms, in flight ${fmtPercent(e.postgresAsync.flushes.inFlight)})` : ''}. Per flush, by statement (mean time from call to answer x calls per flush, share of all time in PostgreSQL calls): ${describeStatements(e.postgres.statements)}.`);
      md.push('');
    }
    if (e.postgres.waits) {
      md.push(`What the server processes serving kiln were doing (pg_stat_activity sampled every 25 ms during the repetitions; share of samples in which at least one of kiln's connections was in the state): ${describeWaits(e.postgres.waits)}${e.postgresAsync?.waits ? `; with synchronous_commit off: ${describeWaits(e.postgresAsync.waits)}` : ''}. \`IO:WALSync\`: a COMMIT waiting for the disk; \`idle in transaction\`: inside a transaction, waiting for kiln's next statement (kiln's turn, or the network); \`running\`: a statement on the server's CPU; \`all idle\`: no transaction open, nothing running (the time kiln spends between flushes).`);
      md.push('');
    }
    charts.push({ name: 'postgres-e2e', alt: 'PostgreSQL against SQLite, 40 x 40 noop, thread', svg: barChart({ title: `${e.runs} runs x ${e.tasks} noop tasks, thread: PostgreSQL vs SQLite`, unit: 'TI/s', bars: [{ label: 'SQLite', value: e.sqlite.tiPerSec.median, color: colorFor('thread') }, { label: 'PostgreSQL', value: e.postgres.tiPerSec.median, color: colorFor('process') }] }) });
  }
  if (r.schedulers) {
    const x = r.schedulers;
    md.push(`**Two \`kiln scheduler\` processes sharing PostgreSQL against one**: ${x.runs} runs x ${x.tasks} noop tasks queued first (\`kiln dags trigger --count ${x.runs}\`, a fresh schema per repetition), each scheduler \`kiln scheduler --executor thread --exit-when-idle\` from dist/ with kiln's defaults${p.parallelism ? ` and parallelism ${p.parallelism}` : ''}; ${x.one.reps} interleaved repetitions a side. **Wall** is from starting the scheduler processes to the last run's end (ended_at in the database), so it includes their start (node, kiln, the DAG folder parsed, the pool warmed); the **run phase** is the first run's start to the last run's end.`);
    md.push('');
    const row = (name, y) => [name, fmtSummary(y.wallMs, 'ms'), fmtSummary(y.tiPerSec), fmtSummary(y.firstRunStartedMs, 'ms'), fmtSummary(y.runPhaseTiPerSec), y.runsByScheduler.map((l) => l.join('+')).join(', '), fmt(y.schedulerCpuMsPerTi), fmt(y.serverCpuMsPerTi), `${fmt(y.roundTripsPerTi)} / ${fmt(y.transactionsPerTi)}`, fmt(y.coresBusy), y.load.map((l) => `${l.before.toFixed(1)}-${l.after.toFixed(1)}`).join(', ')];
    md.push(table(['schedulers', 'wall (start to last run ended)', 'TI/s', 'first run started after', 'run phase TI/s', 'runs per scheduler', 'scheduler CPU per TI (ms)', 'server CPU per TI (ms)', 'round trips / transactions per TI', 'cores busy', 'load (1 min) before-after, per rep'], [row('one', x.one), row('two', x.two)]));
    md.push('');
    md.push(`**Two / one: ${fmtRatio(x.ratio)}** of the TI/s (medians; per round ${fmtRatio(x.perRound.median)}, ${fmtRatio(x.perRound.min)}-${fmtRatio(x.perRound.max)}); run phase alone ${fmtRatio(x.runPhaseRatio)}. Cores busy = CPU of the schedulers (worker threads included) and their server processes over the time to the last exit; the machine has ${p.cores}.`);
    if (x.one.statements?.length) {
      md.push('');
      md.push(`Per transaction, by statement (mean ms from call to answer x calls per transaction, share of all time in PostgreSQL calls): one scheduler: ${describeStatements(x.one.statements)}; two: ${describeStatements(x.two.statements)}.`);
    }
    if (x.one.waits) {
      md.push('');
      md.push(`What the server processes serving the schedulers were doing (pg_stat_activity sampled every 25 ms; share of samples in which at least one of their connections was in the state): one scheduler: ${describeWaits(x.one.waits)}; two: ${describeWaits(x.two.waits)}. \`Lock:transactionid\` / \`Lock:tuple\`: waiting for a row another transaction holds (every write that queues tries locks the pool's row until COMMIT).`);
    }
    charts.push({ name: 'postgres-schedulers', alt: 'One and two schedulers sharing PostgreSQL', svg: barChart({ title: `${x.runs} runs x ${x.tasks} noop tasks on PostgreSQL: one vs two schedulers`, unit: 'TI/s', bars: [{ label: 'one scheduler', value: x.one.tiPerSec.median, color: colorFor('thread') }, { label: 'two schedulers', value: x.two.tiPerSec.median, color: colorFor('process') }] }) });
  }
  return { markdown: md.join('\n'), charts };
}
