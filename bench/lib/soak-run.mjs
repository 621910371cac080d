/**
 * One soak on one database: `kiln db migrate`, the runs queued with
 * `kiln dags trigger soak --count N`, then `kiln scheduler --exit-when-idle` as a child
 * process, watched from outside once a second until it exits.
 *
 * By default every run is triggered before the scheduler starts. Topping up in batches as
 * the scheduler goes (batchRuns, backlogRuns: more runs whenever fewer than backlogRuns
 * wait queued) was tried first and is kept as an option, but it makes the slices unequal:
 * on SQLite a trigger's run-by-run inserts wait for the busy scheduler's write lock, and a
 * `--count 50` took 12-17 s beside it (1-8 s on PostgreSQL), so a trigger process was
 * running and contending half of the time, until the last batch, and then never; a backlog
 * that ran dry also let `--exit-when-idle` end the soak early. With everything queued first,
 * every slice but the drain at the end sees the same thing: a full backlog (the scheduler
 * claims at most max(16, 2 x parallelism) runs at a time, so its cost does not grow with
 * the queue), a history that grows by the same 10,000 task instances, and no other kiln
 * process.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { cliEnv, KILN_CLI, runKiln, SOAK_DAG_ID } from './soak-project.mjs';
import { cpuAccumulator, cpuOf, descendantStats, logFolderMeter, machineCpu, openDbProbe, openFdCount, processStats } from './soak-probes.mjs';

const FINISHED_LIST = `('success', 'failed', 'skipped', 'upstream_failed')`;
/** The scheduler's log lines at level warn or error ("<ISO time> warn  ..."). */
const LOG_PROBLEM = /^\S+\s+(warn|error)\b/i;

export async function runSoak(project, { runs, tasksPerRun, batchRuns = null, backlogRuns = 0, maxActiveRuns, sampleEveryMs = 1000, logSizeEveryMs = 10_000, say = console.log }) {
  const totalTis = runs * tasksPerRun;
  const migrate = await runKiln(project, ['db', 'migrate']);
  if (migrate.code !== 0) throw new Error(`kiln db migrate failed (${migrate.code}): ${migrate.stderr}`);

  const triggers = [];
  let triggered = 0;
  let triggerInFlight = null;
  const trigger = async (count, t0) => {
    const at = performance.now() - (t0 ?? performance.now());
    const r = await runKiln(project, ['dags', 'trigger', SOAK_DAG_ID, '--count', String(count)]);
    if (r.code !== 0) throw new Error(`kiln dags trigger failed (${r.code}): ${r.stderr}`);
    triggered += count;
    triggers.push({ atMs: t0 === undefined ? null : at, runs: count, wallMs: r.ms });
    say(`  triggered ${count} runs${t0 === undefined ? ' before the scheduler started' : ` at ${(at / 1000).toFixed(0)} s`} in ${(r.ms / 1000).toFixed(1)} s`);
  };
  await trigger(batchRuns === null ? runs : Math.min(runs, maxActiveRuns + backlogRuns + batchRuns));

  const outFile = join(project.dir, 'scheduler.out.log');
  const errFile = join(project.dir, 'scheduler.err.log');
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  const loadAverageStart = loadavg();
  const t0 = performance.now();
  const startedAt = Date.now();
  const child = spawn(process.execPath, [KILN_CLI, 'scheduler', '--exit-when-idle'], { cwd: project.dir, env: cliEnv(), stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const exited = new Promise((resolvePromise) => child.on('exit', (code, signal) => resolvePromise({ code, signal, atMs: performance.now() - t0 })));
  let exit = null;
  void exited.then((e) => (exit = e));
  // Ctrl-C on the soak stops the scheduler too (it drains and exits), so nothing is left running.
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    child.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  say(`  scheduler pid ${child.pid} (${project.db}); ${triggered} runs queued`);

  const probe = await openDbProbe(project);
  const samples = [];
  const logSizes = [];
  const measureLogs = logFolderMeter(project.logsFolder, SOAK_DAG_ID);
  let logSizeInFlight = null;
  const workersCpu = cpuAccumulator();
  const serverCpu = cpuAccumulator();
  const sql = sqlSampler(probe, totalTis);
  let lastCpu = machineCpu();
  let lastLogSizeAt = -Infinity;
  let lastSay = 0;
  let triggerError = null;
  // One sample a second, on a fixed grid: a slow read delays one sample, not all after it,
  // and a late sample is not followed by a burst of catch-up samples.
  while (exit === null) {
    const tMs = performance.now() - t0;
    const sched = processStats(child.pid);
    const fds = openFdCount(child.pid);
    const workers = descendantStats(child.pid);
    const cpu = machineCpu();
    const machineBusyPct = cpu.totalMs > lastCpu.totalMs ? (100 * (cpu.busyMs - lastCpu.busyMs)) / (cpu.totalMs - lastCpu.totalMs) : null;
    lastCpu = cpu;
    let progress = null;
    let db = null;
    let server = null;
    try {
      progress = await probe.progress();
      sql.progress = progress.finishedTis;
      db = await probe.size();
      const pids = await probe.serverPids();
      if (project.db === 'postgres') server = { count: pids.length, cpuMs: serverCpu(cpuOf(pids)) };
    } catch (e) {
      say(`  (database read failed: ${e.message})`);
    }
    if (progress && logSizeInFlight === null && tMs - lastLogSizeAt >= logSizeEveryMs) {
      lastLogSizeAt = tMs;
      const at = { tMs, finishedTis: progress.finishedTis };
      // The walk is synchronous (cheaper than promise-based fs calls) and covers only the
      // folders of runs that were unfinished at the last look: a few hundred entries.
      logSizeInFlight = probe.finishedRunIds()
        .then((ids) => measureLogs(ids))
        .then((size) => logSizes.push({ ...at, ...size, tookMs: performance.now() - t0 - at.tMs }))
        .catch((e) => say(`  (log folder size failed: ${e.message})`))
        .finally(() => (logSizeInFlight = null));
    }
    if (sched !== null) {
      samples.push({
        tMs, finishedTis: progress?.finishedTis ?? null, runs: progress?.runs ?? null, triggeredRuns: triggered,
        schedulerRssBytes: sched.rssBytes, schedulerThreads: sched.threads, schedulerCpuMs: sched.cpuMs, fds,
        workers: { count: workers.count, rssBytes: workers.rssBytes, cpuMs: workersCpu(workers.cpuByPid), byKind: workers.byKind },
        server, machineBusyPct, driverCpuMs: driverCpuMs(), load1: loadavg()[0], db,
      });
    }
    if (batchRuns !== null && triggered < runs && triggerInFlight === null && progress && progress.runs.queued < backlogRuns) {
      triggerInFlight = trigger(Math.min(batchRuns, runs - triggered), t0)
        .catch((e) => (triggerError = e))
        .finally(() => (triggerInFlight = null));
    }
    if (progress && tMs - lastSay >= 10_000) {
      lastSay = tMs;
      say(`  ${(tMs / 1000).toFixed(0)} s: ${progress.finishedTis.toLocaleString('en-US')} / ${totalTis.toLocaleString('en-US')} TIs, runs queued ${progress.runs.queued} running ${progress.runs.running}, scheduler RSS ${(sched?.rssBytes / 2 ** 20).toFixed(0)} MiB, workers ${workers.count} ${(workers.rssBytes / 2 ** 20).toFixed(0)} MiB, fds ${fds}, load ${loadavg()[0].toFixed(2)}`);
    }
    if (triggerError) {
      child.kill('SIGTERM');
      break;
    }
    const next = t0 + Math.ceil((performance.now() - t0 + 1) / sampleEveryMs) * sampleEveryMs;
    await Promise.race([exited, new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())))]);
  }
  const exitInfo = await exited;
  await sql.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await triggerInFlight;
  await logSizeInFlight;
  if (interrupted) throw new Error('interrupted');
  if (triggerError) throw triggerError;
  // The harness's own failure, not kiln's (batch mode only): the backlog ran dry first.
  const wentIdleEarly = triggered < runs || (await probe.progress()).runs.queued > 0;
  const loadAverageEnd = loadavg();
  say(`  scheduler exited ${exitInfo.code ?? exitInfo.signal} after ${(exitInfo.atMs / 1000).toFixed(1)} s`);

  const final = { ...(await finalState(probe, project)), tableStats: await probe.tableStats() };
  // Every run has finished: the meter walks only the folders it had not sealed yet.
  const logs = await measureLogs(await probe.finishedRunIds());
  await probe.close();
  return {
    db: project.db,
    databaseUrl: project.databaseUrl.replace(/\/\/[^@/]*@/, '//'),
    config: project.config,
    runs, tasksPerRun, totalTis, batchRuns, backlogRuns,
    startedAt: new Date(startedAt).toISOString(),
    loadAverageStart, loadAverageEnd,
    migrateMs: migrate.ms,
    triggers,
    wentIdleEarly,
    scheduler: { pid: child.pid, exitCode: exitInfo.code, exitSignal: exitInfo.signal, wallMs: exitInfo.atMs, stderrTail: tail(errFile), stdoutTail: tail(outFile), warnings: countLines(errFile, LOG_PROBLEM) + countLines(outFile, LOG_PROBLEM), firstWarnings: matchingLines(errFile, LOG_PROBLEM, 20) },
    samples,
    logSizes,
    sqlProfile: sql.profile(),
    final: { ...final, logs },
  };
}

/** After the scheduler exited: states, tries, isolations, sizes, and every finish time. */
async function finalState(probe, project) {
  const q = (sql) => probe.query(sql);
  const counts = (rows, key) => Object.fromEntries(rows.map((r) => [String(r[key]), Number(r.n)]));
  const tiStates = counts(await q('SELECT state, COUNT(*) AS n FROM task_instance GROUP BY state'), 'state');
  const runStates = counts(await q('SELECT state, COUNT(*) AS n FROM dag_run GROUP BY state'), 'state');
  const tries = counts(await q('SELECT try_number, COUNT(*) AS n FROM task_instance GROUP BY try_number'), 'try_number');
  const isolations = counts(await q('SELECT isolation, COUNT(*) AS n FROM task_instance GROUP BY isolation'), 'isolation');
  const endedAt = (await q(`SELECT ended_at FROM task_instance WHERE state IN ${FINISHED_LIST} AND ended_at IS NOT NULL ORDER BY ended_at`)).map((r) => Number(r.ended_at));
  const runTimes = (await q('SELECT started_at, ended_at FROM dag_run ORDER BY started_at')).map((r) => ({ startedAt: Number(r.started_at), endedAt: Number(r.ended_at) }));
  const db = await probe.size();
  return { tiStates, runStates, tries, isolations, endedAt, runTimes, db, dbKind: project.db };
}

/**
 * PostgreSQL only: every 200 ms, the statements kiln's backends are executing, counted per
 * 10% slice of progress. The statement seen most often is where the server's time goes;
 * one whose share grows from the first slice to the last is one that slows down as the
 * history grows.
 */
function sqlSampler(probe, totalTis, everyMs = 200) {
  const counts = new Map();
  const samplesPerSlice = Array(10).fill(0);
  let inFlight = null;
  const state = { progress: 0 };
  const timer = setInterval(() => {
    if (inFlight) return;
    const slice = Math.min(9, Math.floor((10 * state.progress) / totalTis));
    inFlight = probe
      .activeQueries()
      .then((queries) => {
        samplesPerSlice[slice]++;
        for (const q of queries) {
          const key = q.replace(/\s+/g, ' ').trim().slice(0, 400);
          if (!counts.has(key)) counts.set(key, Array(10).fill(0));
          counts.get(key)[slice]++;
        }
      })
      .catch(() => {})
      .finally(() => (inFlight = null));
  }, everyMs);
  return Object.assign(state, {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
    profile: () => ({ everyMs, samplesPerSlice, statements: [...counts].map(([query, perSlice]) => ({ query, perSlice, total: perSlice.reduce((a, b) => a + b, 0) })).sort((a, b) => b.total - a.total) }),
  });
}

/** This process's own CPU time (ms): the soak's sampling and trigger bookkeeping. */
function driverCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The first `max` lines of a file that match `re` (the scheduler's warnings, kept with the result). */
function matchingLines(file, re, max) {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => re.test(l)).slice(0, max);
  } catch {
    return [];
  }
}

function countLines(file, re) {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => re.test(l)).length;
  } catch {
    return 0;
  }
}
