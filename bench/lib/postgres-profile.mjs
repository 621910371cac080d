/**
 * The profile jobs of the postgres case's missed targets (bench/lib/profile-jobs.mjs hands
 * them here), each on a database of its own (bench/lib/postgres-bench.mjs), dropped after:
 *   - `schedulers` absent: the 40 x 40 thread workload in a mode server on PostgreSQL under
 *     V8's CPU profiler, as every other profile job (the measured repetitions only), with its
 *     round trips counted (bench/lib/pg-count.mjs) and the server's CPU read from /proc;
 *   - `schedulers: 2`: the two-scheduler workload (80 runs x 40 noop tasks queued first), each
 *     `kiln scheduler` under `node --cpu-prof` for its whole life (start, DAG folder parse,
 *     pool warm-up, the runs, the idle exit): its main thread, where the run engine, the store
 *     and the supervisor run.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeProfile } from './cpu-profile.mjs';
import { writeDag } from './dags.mjs';
import { startModeServer } from './mode-client.mjs';
import { backendCpu, cliEnv, mainThreadProfile, openBenchDatabase, PG_COUNT, runKiln, sleep, startSchedulers } from './postgres-bench.mjs';
import { fmt, table } from './report.mjs';

const APP = 'kiln_bench_profile';

const summary = (file) => {
  const s = summarizeProfile(file);
  return { totalMs: s.totalMs, areas: s.areas, top: s.functions.slice(0, 15), inclusive: s.inclusive.filter((f) => f.area.startsWith('kiln')).slice(0, 15), nativeByCaller: s.nativeByCaller.slice(0, 8) };
};

export async function runPostgresProfileJob(job, { tmpDir, outDir, name }) {
  const db = await openBenchDatabase();
  if (db.skipped) throw new Error(db.skipped);
  const work = mkdtempSync(join(tmpDir, 'profile-postgres-'));
  try {
    return job.schedulers ? await profileSchedulers(job, db, work, { outDir, name }) : await profileEngine(job, db, work, { outDir, name });
  } finally {
    await db.drop();
    rmSync(work, { recursive: true, force: true }); // the profiles are in outDir
  }
}

async function profileEngine(job, db, work, { outDir, name }) {
  const server = startModeServer('profile-postgres', { execArgv: ['--import', PG_COUNT] });
  try {
    const tag = `postgres-${job.mode}-${job.dag}`;
    await server.call('open', { home: join(work, 'home'), config: { executor: job.mode, databaseUrl: db.schemaUrl('profile', APP) } });
    await server.call('load', { file: job.file });
    await server.call('run', { file: job.file, runs: 8 }); // warm-up
    const out = join(outDir, `${name}-${tag}.cpuprofile`);
    const cpu = backendCpu(db, APP);
    await cpu.start();
    const r = await server.call('profile', { file: job.file, runs: job.runs, reps: job.reps, out });
    await cpu.sample();
    return { ...job, profileFile: out, wallMs: r.wallMs, tis: r.tis, transactions: r.transactions, pgCounts: r.pgCounts, serverCpuMs: cpu.totalMs(), ...summary(out) };
  } finally {
    await server.close();
  }
}

async function profileSchedulers(job, db, work, { outDir, name }) {
  const tag = `postgres-${job.schedulers}-schedulers`;
  const dagsFolder = join(work, 'dags');
  mkdirSync(dagsFolder, { recursive: true });
  writeDag(dagsFolder, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop', maxActiveRuns: Math.max(16, job.runs) });
  const databaseUrl = db.schemaUrl('profile', APP);
  const env = cliEnv({ KILN_DATABASE_URL: databaseUrl, KILN_DAGS_FOLDER: dagsFolder });
  await runKiln(['db', 'migrate'], { cwd: work, env });
  await runKiln(['dags', 'trigger', 'bench_wide40_noop', '--count', String(job.runs)], { cwd: work, env });
  const cpuProfDir = join(outDir, `${name}-${tag}`);
  const cpu = backendCpu(db, APP);
  await cpu.start();
  const t0 = Date.now();
  const started = startSchedulers({ count: job.schedulers, databaseUrl, dagsFolder, dir: join(work, 'schedulers'), cpuProfDir });
  let done = false;
  const exited = started.exited.finally(() => (done = true));
  try {
    while (!done) {
      await Promise.race([exited.catch(() => {}), sleep(200)]);
      await cpu.sample();
    }
  } finally {
    started.kill();
  }
  const procs = await exited;
  const wallMs = Date.now() - t0;
  for (const p of procs) if (p.code !== 0) throw new Error(`scheduler ${p.name} exited ${p.code}: ${p.output().trim().split('\n').slice(-3).join(' | ')}`);
  const [tiRow] = (await db.query(`SELECT count(*) FILTER (WHERE state = 'success')::int AS ok FROM "profile".task_instance`)).rows;
  const byPid = new Map((await db.query(`SELECT s.pid, count(*)::int AS runs FROM "profile".dag_run r JOIN "profile".scheduler s ON s.id = r.claimed_by GROUP BY s.pid`)).rows.map((r) => [r.pid, r.runs]));
  const schedulers = procs.map((p) => {
    const file = mainThreadProfile(p.cpuProfDir, p.pid);
    if (file === null) return { name: p.name, error: 'no main-thread .cpuprofile was written' };
    const cpuMs = p.counts ? (p.counts.resourceUsage.userCPUTime + p.counts.resourceUsage.systemCPUTime) / 1000 : null;
    return { name: p.name, pid: p.pid, runs: byPid.get(p.pid) ?? 0, profileFile: file, cpuMs, pgCounts: p.counts ? { queries: p.counts.queries, begins: p.counts.begins } : null, ...summary(file) };
  });
  // The main tables show the scheduler that drove the most runs.
  const first = schedulers.filter((s) => !s.error).sort((a, b) => b.runs - a.runs)[0];
  if (!first) throw new Error('no scheduler wrote a main-thread profile');
  const sum = (k) => procs.reduce((s, p) => s + (p.counts?.[k] ?? 0), 0);
  // The main tables are one scheduler's: its task instances (its runs x 40) and transactions; the round trips and the server's CPU are both schedulers'.
  return {
    ...job, wallMs, tis: first.runs * 40, tisAll: tiRow.ok, transactions: first.pgCounts?.begins, pgCounts: { queries: sum('queries'), begins: sum('begins') }, serverCpuMs: cpu.totalMs(),
    profileFile: first.profileFile, totalMs: first.totalMs, areas: first.areas, top: first.top, inclusive: first.inclusive, nativeByCaller: first.nativeByCaller,
    profiledScheduler: first.name, schedulers,
  };
}

/** The report's extra lines for a PostgreSQL profile (render.mjs renders the main profile as for every job). */
export function renderPostgresProfile(p) {
  const out = [];
  const tis = p.tisAll ?? p.tis;
  if (p.pgCounts) out.push(`PostgreSQL, over the profiled work${p.tisAll ? ` (both schedulers, ${fmt(tis)} task instances)` : ''}: ${fmt(p.pgCounts.queries)} round trips (${fmt(p.pgCounts.queries / tis)} per task instance), ${fmt(p.pgCounts.begins)} transactions (${fmt(p.pgCounts.begins / tis)} per task instance); the server processes serving kiln used ${fmt(p.serverCpuMs)} ms of CPU (${fmt(p.serverCpuMs / tis)} ms per task instance).`, '');
  if (p.schedulers?.length) {
    out.push(`The tables above are scheduler ${p.profiledScheduler}'s main thread over its whole life (\`node --cpu-prof\`: start, DAG folder parse, pool warm-up, its runs, the idle exit). Each scheduler:`, '');
    out.push(table(['scheduler', 'runs it drove', 'profiled (its whole life)', 'main thread busy', 'process CPU (threads included)', 'round trips / transactions'], p.schedulers.filter((s) => !s.error).map((s) => {
      const busy = s.areas.filter((a) => a.area !== '(idle)').reduce((x, a) => x + a.selfMs, 0);
      return [s.name, s.runs, `${fmt(s.totalMs)} ms`, `${fmt(busy)} ms (${fmt((busy / s.totalMs) * 100)}%)`, s.cpuMs === null ? 'n/a' : `${fmt(s.cpuMs)} ms`, s.pgCounts ? `${fmt(s.pgCounts.queries)} / ${fmt(s.pgCounts.begins)}` : 'n/a'];
    })));
    out.push('');
  }
  return out.join('\n');
}
