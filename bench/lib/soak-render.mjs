/** The soak's markdown report and its charts (RSS, throughput, fds, storage over progress). */
import { fmt, fmtBytes, fmtPercent, machineRows, table } from './report.mjs';
import { lineChart } from './soak-svg.mjs';

const TITLE = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
const COLOR = { sqlite: '#1971c2', postgres: '#e8590c' };
const MiB = 2 ** 20;
const loads = (l) => (l ? l.map((x) => x.toFixed(2)).join(' / ') : 'n/a');
const int = (n) => (n === null || n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'));
const verdict = (t) => (t ? `${t.met === true ? '**met**' : t.met === false ? '**missed**' : 'n/a'}: ${t.verdict}` : 'not run');

export function renderSoakReport(doc, { chartDir }) {
  const m = doc.machine;
  const p = doc.parameters;
  const dbs = Object.entries(doc.databases);
  const ok = dbs.filter(([, d]) => d.analysis);
  const out = [];
  const charts = [];
  out.push(`# kiln soak: ${doc.name}`);
  out.push('');
  if (doc.note) out.push(`> ${doc.note}`, '');
  out.push(`Reproduce: \`${doc.command}\` (it builds kiln first; PostgreSQL at 127.0.0.1:5432, database \`test\`, or \`KILN_TEST_POSTGRES_URL\`). Started ${doc.startedAt}, took ${fmt(doc.durationSec)} s.`);
  out.push('');
  out.push(`${int(p.runs * p.tasksPerRun)} task instances (${int(p.runs)} runs x ${p.tasksPerRun} tasks: \`t000\` -> 98 tasks in parallel -> \`t099\`; even-numbered tasks \`isolation: 'thread'\`, odd-numbered \`'process'\`; retries 1, retryDelay \`${p.dag.retryDelay}\`; a first try fails when an FNV-1a hash of run id and task id is divisible by ${p.dag.failOneIn}; every task writes one \`ctx.log.info\` line, so every try has its log file) through one \`kiln scheduler --exit-when-idle\`, the CLI in dist/ run as a user runs it: a scratch project with \`dags/soak.ts\` and a \`kiln.config.json\` naming only the DAG folder and the database, kiln's defaults for everything else (executor \`process\`, parallelism 4 x cores, maxActiveRuns ${p.dag.maxActiveRuns}). ${triggerText(p)}`);
  out.push('');
  out.push(`Sampled from outside every ${p.sampleEveryMs / 1000} s: the scheduler's RSS (\`VmRSS\`; **its worker threads, i.e. the thread-isolation pool and the DAG-parse worker, are inside this figure**), the summed RSS of its child processes (the pre-forked process workers, found through \`/proc/<pid>/task/*/children\`), its open fds (\`/proc/<pid>/fd\`), CPU time of both, the database size (SQLite: file + \`-wal\` + \`-shm\`; PostgreSQL: \`pg_total_relation_size\` summed over the soak's schema), progress (one \`COUNT(*)\` of finished task instances on the state index, one \`GROUP BY state\` of runs); the log folder's size every ${p.logSizeEveryMs / 1000} s (blocks on disk as \`du\` counts them, directories included; a run's folder is walked until its run has finished, then remembered, so measuring does not cost more as the folder grows). Throughput per slice is exact: it comes from every task instance's \`ended_at\` after the run.`);
  out.push('');
  out.push(table(['machine', ''], machineRows(doc)));
  out.push('');
  out.push('The machine is shared: other engineers\' builds and test suites ran beside the soak. The load average and the CPU the machine spent outside the soak (per slice, below) say how much; throughput comparisons between slices carry that noise, memory and fd figures do not.');
  out.push('');
  for (const [db, d] of dbs) if (d.error) out.push(`**${TITLE[db]}: the soak failed or did not run:** \`${d.error.split('\n')[0]}\`\n`);

  if (ok.length > 0) {
    out.push('## Targets');
    out.push('');
    const names = ok[0][1].analysis.targets.map((t) => t.name);
    out.push(table(['target', ...ok.map(([db]) => TITLE[db])], names.map((n, i) => [n, ...ok.map(([, d]) => verdict(d.analysis.targets[i]))])));
    out.push('');
    out.push(`RSS and fds "at" a point are medians of the samples within 2% of the total around it (at the end, the last 4% before the last task instance finished: after it the scheduler is going idle and stopping its pools): ${ok.map(([db, d]) => `${TITLE[db]} ${d.analysis.marks.at20.samples} and ${d.analysis.marks.atEnd.samples} samples`).join(', ')}. The fd tolerance allows for the try log files and pipes open at the moment of a sample; a leak of one fd per run or per try would add hundreds.`);
    out.push('');
    out.push('## Headline figures');
    out.push('');
    out.push(table(['figure', ...ok.map(([db]) => TITLE[db])], headline(ok)));
    out.push('');
    charts.push(...chartsFor(ok, p));
    for (const c of charts) {
      out.push(`![${c.alt}](${chartDir}/${c.name}.svg)`);
      out.push('');
    }
  }
  for (const [db, d] of ok) out.push(section(db, d, m.cores));
  return { markdown: out.join('\n'), charts };
}

function triggerText(p) {
  if (!p.batchRuns) return `All runs are queued with one \`kiln dags trigger soak --count ${p.runs}\` before the scheduler starts, so every slice but the drain at the end runs with a full backlog, a history that grows by the same number of task instances, and no other kiln process beside the scheduler (the scheduler claims at most max(16, 2 x parallelism) runs at a time, so its work does not grow with the queue). Topping up in batches as it goes (\`--batch N\`) makes the slices unequal: on SQLite a trigger's run-by-run inserts wait for the busy scheduler's write lock (see bench/lib/soak-run.mjs).`;
  return `Runs are queued with \`kiln dags trigger soak --count N\`: ${int(p.dag.maxActiveRuns + p.backlogRuns + p.batchRuns)} before the scheduler starts, then ${int(p.batchRuns)} more whenever fewer than ${int(p.backlogRuns)} wait queued (\`--batch ${p.batchRuns}\`), so the history grows while the scheduler runs; each 10% slice carries about ${fmt(p.runs / 10 / p.batchRuns)} triggers.`;
}

function headline(ok) {
  const row = (label, f) => [label, ...ok.map(([, d]) => f(d.analysis, d.result))];
  return [
    row('task instances finished / retried after a planned first-try failure', (a) => `${int(a.totals.finishedTis)} / ${int(a.totals.retriedTis)} (${fmtPercent(a.totals.retriedShare)})`),
    row('runs succeeded / failed', (a) => `${int(a.totals.runsSucceeded)} / ${int(a.totals.runsFailed)}`),
    row('isolation of the task instances', (a) => Object.entries(a.totals.isolations).map(([k, n]) => `${k} ${int(n)}`).join(', ')),
    row('scheduler wall time (start to exit); first task instance done after', (a, r) => `${fmt(r.scheduler.wallMs / 1000)} s; ${fmt(a.totals.firstTiAfterSec)} s`),
    row('throughput, first to last task instance', (a) => `${fmt(a.totals.tiPerSecOverall)} TI/s`),
    row('throughput, first slice / last slice (last / first)', (a) => a.slices.length ? `${fmt(a.slices[0].tiPerSec)} / ${fmt(a.slices.at(-1).tiPerSec)} TI/s (${fmtPercent(a.lastOverFirst)})` : 'n/a'),
    row('... last slice up to the start of the last run (before the drain)', (a) => a.lastSteady ? `${fmt(a.lastSteady.tiPerSec)} TI/s (${fmtPercent(a.lastOverFirstSteady)} of the first)` : 'n/a'),
    row('scheduler CPU per task instance, first slice / last slice (last / first)', (a) => perTi(a, 'schedulerCpuMsPerTi')),
    row('PostgreSQL server CPU per task instance, first slice / last slice (last / first)', (a) => perTi(a, 'serverCpuMsPerTi')),
    row(`scheduler RSS at 20% / at the end (growth); peak after 20%`, (a) => `${fmtBytes(a.marks.at20.schedulerRssBytes)} / ${fmtBytes(a.marks.atEnd.schedulerRssBytes)} (${signedPct(a.rssGrowth)}); ${fmtBytes(a.marks.peakAfter20.schedulerRssBytes)}`),
    row('... its trend from 20% to the end (a line fitted to every sample)', (a) => signedPct(a.trends?.schedulerRss ?? null)),
    row('worker processes\' RSS, summed, at 20% / at the end; peak after 20%', (a) => `${fmtBytes(a.marks.at20.workersRssBytes)} / ${fmtBytes(a.marks.atEnd.workersRssBytes)}; ${fmtBytes(a.marks.peakAfter20.workersRssBytes)}`),
    row('... its trend from 20% to the end', (a) => signedPct(a.trends?.workersRss ?? null)),
    row('scheduler open fds at 20% / at the end; peak after 20%', (a) => `${fmt(a.marks.at20.fds)} / ${fmt(a.marks.atEnd.fds)}; ${fmt(a.marks.peakAfter20.fds)}`),
    row('scheduler threads at 20% / at the end', (a) => `${fmt(a.marks.at20.threads)} / ${fmt(a.marks.atEnd.threads)}`),
    row('database size at the end', (a, r) => dbSize(r.final.db)),
    row('log folder at the end: files, their bytes, disk used (with directories)', (a, r) => `${int(r.final.logs.files)} files, ${fmtBytes(r.final.logs.fileBytes)}, ${fmtBytes(r.final.logs.diskBytes)} on disk (${int(r.final.logs.inodes)} inodes)`),
    row('removing the scratch project afterwards (`rm -r`, nearly all of it the log folder)', (a, r) => r.final.logs.removeProjectSec === undefined ? 'n/a' : `${fmt(r.final.logs.removeProjectSec)} s`),
    row('median run duration (start to end)', (a) => `${fmt(a.totals.runMedianSec)} s`),
    row('load average at start / end of this database\'s soak', (a, r) => `${loads(r.loadAverageStart)} -> ${loads(r.loadAverageEnd)}`),
  ];
}

function section(db, d, cores) {
  const a = d.analysis;
  const r = d.result;
  const out = [`## ${TITLE[db]}`, ''];
  out.push(`Database \`${r.databaseUrl}\`; \`kiln db migrate\` ${fmt(r.migrateMs)} ms; ${r.triggers.length === 1 ? `\`kiln dags trigger soak --count ${r.triggers[0].runs}\` ${fmt(r.triggers[0].wallMs / 1000)} s (${int(r.totalTis)} task-instance rows inserted)` : `${r.triggers.length} triggers (\`kiln dags trigger --count\`, ${fmt(Math.min(...r.triggers.map((t) => t.wallMs)) / 1000)}-${fmt(Math.max(...r.triggers.map((t) => t.wallMs)) / 1000)} s each)`}; the scheduler exited ${r.scheduler.exitCode ?? r.scheduler.exitSignal} ${fmt(a.totals.exitAfterLastTiSec)} s after the last task instance finished; ${r.scheduler.warnings} warning or error lines in its log.${r.wentIdleEarly ? ' **The scheduler went idle before the last trigger: the harness\'s backlog ran dry; the figures below are incomplete.**' : ''}`);
  out.push('');
  if (r.scheduler.firstWarnings?.length) out.push(`The scheduler's warnings (the first ${r.scheduler.firstWarnings.length}):`, '', '```', ...r.scheduler.firstWarnings, '```', '');
  out.push(`Final states: task instances ${states(r.final.tiStates)}; runs ${states(r.final.runStates)}; tries ${Object.entries(r.final.tries).map(([k, n]) => `${k}: ${int(n)}`).join(', ')}.`);
  out.push('');
  const pgCols = db === 'postgres';
  out.push(`Throughput per slice of ${int(a.sliceTis)} task instances. CPU is in percent of one core (the machine has ${cores} cores, ${cores * 100}% in all): the scheduler process (its main thread and its worker threads), its worker processes${pgCols ? ', the PostgreSQL server processes serving its connections (found by their application_name in pg_stat_activity)' : ''}, this harness, and the rest: everything else the machine ran meanwhile, other users' work. CPU per task instance hardly moves when other work takes the cores, so it is the figure to read for a scheduler that slows down as its history grows.`);
  out.push('');
  const batches = r.triggers.length > 1;
  out.push(table(
    ['slice', 'seconds', 'TI/s', 'scheduler CPU ms per TI', ...(pgCols ? ['PostgreSQL CPU ms per TI'] : []), 'scheduler CPU', 'worker processes CPU', ...(pgCols ? ['PostgreSQL CPU'] : []), 'harness CPU', 'rest of the machine', 'load (1 min)', ...(batches ? ['triggers'] : [])],
    a.slices.map((s) => [
      `${int(s.fromTi)}-${int(s.toTi)}`, fmt(s.seconds), fmt(s.tiPerSec), fmt(s.schedulerCpuMsPerTi), ...(pgCols ? [fmt(s.serverCpuMsPerTi)] : []),
      pct(s.schedulerCpuPct), pct(s.workersCpuPct), ...(pgCols ? [pct(s.serverCpuPct)] : []), pct(s.driverCpuPct),
      s.machineBusyPct === null ? 'n/a' : pct(Math.max(0, cores * s.machineBusyPct - (s.schedulerCpuPct ?? 0) - (s.workersCpuPct ?? 0) - (s.serverCpuPct ?? 0) - (s.driverCpuPct ?? 0))),
      fmt(s.load1), ...(batches ? [s.triggers] : []),
    ]),
  ));
  out.push('');
  if (a.lastSteady) out.push(`The last slice ends in the drain: after the last run started (${fmt((a.slices.at(-1).toAt - a.lastSteady.toAt) / 1000)} s before the last task instance finished) fewer runs than maxActiveRuns are left, and the last ones may wait out a retry delay with nothing else to run. Up to that moment the last slice ran ${fmt(a.lastSteady.tiPerSec)} TI/s (${int(a.lastSteady.tis)} task instances in ${fmt(a.lastSteady.seconds)} s), ${fmtPercent(a.lastOverFirstSteady)} of the first slice.`);
  out.push('');
  const sqlSection = renderSqlProfile(r);
  if (sqlSection) out.push(sqlSection);
  out.push('Timeline (the first sample past each 10% of progress; the last row is the last sample before the last task instance finished, while the scheduler still worked):');
  out.push('');
  const rows = [];
  const working = r.samples.filter((x) => x.finishedTis !== null && x.tMs <= a.totals.lastTiAfterSec * 1000);
  for (let k = 0; k <= 10; k++) {
    const s = k === 10 ? working.at(-1) : working.find((x) => x.finishedTis >= (k / 10) * r.totalTis && (k > 0 || x.finishedTis > 0));
    if (!s || rows.some((row) => row[1] === fmt(s.tMs / 1000))) continue;
    rows.push([int(s.finishedTis), fmt(s.tMs / 1000), fmtBytes(s.schedulerRssBytes), s.schedulerThreads, `${fmtBytes(s.workers.rssBytes)} (${s.workers.count})`, s.fds, s.db ? fmtBytes(s.db.bytes) : 'n/a', lastLogs(r.logSizes ?? [], s), `${s.runs?.queued ?? 'n/a'} / ${s.runs?.running ?? 'n/a'}`, fmt(s.load1)]);
  }
  out.push(table(['finished TIs', 's', 'scheduler RSS', 'threads', 'worker processes RSS (count)', 'fds', 'database', 'logs on disk', 'runs queued / running', 'load'], rows));
  out.push('');
  return out.join('\n');
}

function chartsFor(ok, p) {
  const total = p.runs * p.tasksPerRun;
  const xLabel = 'task instances finished';
  const markers = [{ x: 0.2 * total, label: '20%' }];
  const mib = (pts) => pts.map(([x, y]) => [x, y / MiB]);
  return [
    { name: 'rss', alt: 'RSS of the scheduler and of its worker processes over progress', svg: lineChart({
      title: 'RSS: scheduler (solid; its worker threads included), worker processes (dashed, summed)', xLabel, yLabel: 'MiB', markers, xMax: total,
      series: ok.flatMap(([db, d]) => [
        { label: `${TITLE[db]}: scheduler`, color: COLOR[db], points: mib(d.analysis.series.schedulerRss) },
        { label: `${TITLE[db]}: worker processes`, color: COLOR[db], dash: '5 3', points: mib(d.analysis.series.workersRss) },
      ]) }) },
    { name: 'throughput', alt: 'throughput over progress', svg: lineChart({
      title: 'Throughput: per 10% slice (thick), per second averaged over 5 s (thin)', xLabel, yLabel: 'task instances / s', markers, xMax: total,
      series: ok.flatMap(([db, d]) => [
        { label: `${TITLE[db]}: per slice`, color: COLOR[db], width: 3, steps: d.analysis.slices.map((s) => ({ x0: s.fromTi, x1: s.toTi, y: s.tiPerSec })) },
        { label: `${TITLE[db]}: per second`, color: COLOR[db], width: 1, points: d.analysis.series.tiPerSec },
      ]) }) },
    { name: 'fds', alt: 'open file descriptors of the scheduler over progress', svg: lineChart({
      title: 'Open file descriptors of the scheduler process', xLabel, yLabel: 'fds', markers, xMax: total,
      series: ok.map(([db, d]) => ({ label: TITLE[db], color: COLOR[db], points: d.analysis.series.fds })) }) },
    { name: 'storage', alt: 'database and log folder size over progress', svg: lineChart({
      title: 'Database size (solid) and log folder on disk (dashed)', xLabel, yLabel: 'MiB', xMax: total,
      series: ok.flatMap(([db, d]) => [
        { label: `${TITLE[db]}: database`, color: COLOR[db], points: mib([...d.analysis.series.dbBytes, [total, d.result.final.db.bytes]]) },
        { label: `${TITLE[db]}: logs (every ${p.logSizeEveryMs / 1000} s)`, color: COLOR[db], dash: '5 3', points: mib([...d.analysis.series.logBytes, [total, d.result.final.logs.diskBytes]]) },
      ]) }) },
  ];
}

function dbSize(s) {
  if (!s) return 'n/a';
  if (s.walBytes !== undefined) return `${fmtBytes(s.bytes)} (file ${fmtBytes(s.mainBytes)}, -wal ${fmtBytes(s.walBytes)}, -shm ${fmtBytes(s.shmBytes)})`;
  return `${fmtBytes(s.bytes)} (task_instance with its indexes ${fmtBytes(s.taskInstanceBytes)})`;
}

/** The log folder's size as last measured (every few seconds) at or before a sample. */
function lastLogs(logSizes, at) {
  const s = [...logSizes].reverse().find((x) => x.tMs <= at.tMs && x.diskBytes);
  return s ? fmtBytes(s.diskBytes) : 'n/a';
}

/** PostgreSQL: the sampled statements and the table statistics, when the run has them. */
function renderSqlProfile(r) {
  const prof = r.sqlProfile;
  if (!prof || prof.statements.length === 0) return null;
  const out = [];
  const n = prof.samplesPerSlice;
  const share = (count, samples) => (samples > 0 ? `${fmt((100 * count) / samples)}%` : 'n/a');
  const all = n.reduce((a, b) => a + b, 0);
  out.push(`Where the PostgreSQL server's time went: every ${prof.everyMs} ms the harness read the statements kiln's connections were executing (\`pg_stat_activity\`, state \`active\`); ${int(all)} looks. A share is the fraction of looks that found the statement running (several connections can each run one, so shares may add up past 100%), overall, in the first slice and in the last:`);
  out.push('');
  out.push(table(['statement', 'overall', 'first slice', 'last slice'], prof.statements.slice(0, 8).map((st) => [
    `\`${st.query.length > 220 ? `${st.query.slice(0, 220)}...` : st.query}\``, share(st.total, all), share(st.perSlice[0], n[0]), share(st.perSlice[9], n[9]),
  ])));
  out.push('');
  const tables = r.final.tableStats ?? [];
  if (tables.length > 0) {
    out.push('Table statistics at the end (`pg_stat_user_tables`): sequential scans and the rows they read, index scans, live and dead rows, updates and how many were HOT (no index change), autovacuum and autoanalyze runs:');
    out.push('');
    out.push(table(['table', 'seq scans', 'rows read by seq scans', 'index scans', 'live rows', 'dead rows', 'updates (HOT)', 'autovacuum / autoanalyze'], tables.map((t) => [
      t.table, int(t.seq_scan), int(t.seq_tup_read), int(t.idx_scan), int(t.n_live_tup), int(t.n_dead_tup), `${int(t.n_tup_upd)} (${int(t.n_tup_hot_upd)})`, `${t.autovacuum_count} / ${t.autoanalyze_count}`,
    ])));
    out.push('');
  }
  return out.join('\n');
}

function perTi(a, key) {
  const first = a.slices[0]?.[key];
  const last = a.slices.at(-1)?.[key];
  if (first === null || first === undefined || last === null || last === undefined) return 'n/a';
  return `${fmt(first)} / ${fmt(last)} ms (${fmtPercent(last / first)})`;
}

const states = (o) => Object.entries(o).map(([k, n]) => `${k} ${int(n)}`).join(', ');
const pct = (v) => (v === null || v === undefined ? 'n/a' : `${fmt(v)}%`);
const signedPct = (v) => (v === null ? 'n/a' : `${v >= 0 ? '+' : ''}${fmt(v * 100)}%`);
