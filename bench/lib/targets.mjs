/**
 * The targets of issues 5, 10 and 12, of task mapping, of remote workers, and of PostgreSQL
 * end to end and like-with-like peers, evaluated from one run's results, and the headline figures the README quotes. A target whose case did not
 * run is reported as not measured.
 */
import { fmt, fmtBytes, target } from './report.mjs';

const result = (doc, id) => doc.cases[id]?.result ?? null;

export function evaluateTargets(doc) {
  const out = [];
  const modes = result(doc, 'executor-modes');
  const big = modes?.scenarios?.find((s) => s.id === 'noop-40x40');
  const one = modes?.scenarios?.find((s) => s.id === 'noop-12x1');
  out.push(target('40 runs x 40 noop tasks end to end, thread >= 10,000 TI/s', big?.modes.thread?.tiPerSec.median, 10_000, 'higher', 'TI/s'));
  out.push(target('40 runs x 40 noop tasks end to end, process >= 5,000 TI/s', big?.modes.process?.tiPerSec.median, 5_000, 'higher', 'TI/s'));
  out.push(target('40x40 noop: thread >= 300x spawn (TI/s)', big?.speedupOverSpawn?.thread, 300, 'higher', 'x'));
  out.push(target('40x40 noop: process >= 300x spawn (TI/s)', big?.speedupOverSpawn?.process, 300, 'higher', 'x'));
  out.push(target('12-task example DAG, one run after warm-up, thread <= 15 ms wall', one?.modes.thread?.wallMs.median, 15, 'lower', 'ms'));
  out.push(target('12-task example DAG, one run: thread >= 50x faster than spawn', one?.speedupOverSpawn?.thread, 50, 'higher', 'x'));
  const dt = result(doc, 'dags-test');
  // Per-task overhead: the 100-task chain on a context built once (one task after another,
  // as Airflow's dag.test() runs them), per executor.
  out.push(target('dags test per-task overhead <= 0.3 ms (100-task noop chain, context built once), thread', dt?.byExecutor?.thread?.warmChainMsPerTask.median, 0.3, 'lower', 'ms'));
  out.push(target('dags test per-task overhead <= 0.3 ms (100-task noop chain, context built once), process (the default executor)', dt?.byExecutor?.process?.warmChainMsPerTask.median, 0.3, 'lower', 'ms'));
  const mem = result(doc, 'scheduler-memory');
  out.push(target('scheduler allocation per loop at 20,000 TIs within 1.2x of 2,000', mem?.kiln?.growth, 1.2, 'lower', 'x'));
  const bull = result(doc, 'bullmq');
  out.push(target('kiln thread >= 2x BullMQ sandboxed worker-thread throughput', bull?.ratios?.threadOverBullmq, 2, 'higher', 'x'));
  // Like with like: kiln process against BullMQ's sandboxed child processes.
  out.push(target('kiln process >= 1.5x BullMQ sandboxed child-process throughput', bull?.ratios?.processOverBullmqProcess, 1.5, 'higher', 'x'));
  // Issue 12: metrics on (scraped every second) costs at most 5% of the throughput.
  const metrics = result(doc, 'metrics');
  out.push(target('40 runs x 40 noop tasks, thread: metrics on (scraped every second) >= 0.95x metrics off (TI/s)', metrics?.ratio, 0.95, 'higher', 'x'));
  // Issue 10, item 6: the grid of 100 runs x 100 tasks and a 50 MB log's tail, on SQLite.
  const web = result(doc, 'web');
  const fullGrid = web?.params?.cells === 10_000;
  out.push(target('grid of 100 runs x 100 tasks (10,000 TIs), SQLite: server time < 50 ms (median)', fullGrid ? web.grid.serverMs.median : null, 50, 'lower', 'ms'));
  out.push(target('grid of 100 runs x 100 tasks painted in Chromium < 500 ms from navigation (median)', fullGrid ? web.browser?.paintedMs?.median : null, 500, 'lower', 'ms'));
  out.push(target('50 MB log: the tail, first response < 100 ms', web?.log?.fileBytes >= 50 * 2 ** 20 ? web.log.firstMs : null, 100, 'lower', 'ms'));
  // Task mapping: one run mapping a noop task over 10,000 items (not measured at smoke scale's 300).
  const mapping = result(doc, 'mapping');
  const fullMap = mapping?.params?.items === 10_000;
  out.push(target('one run mapping a noop task over 10,000 items, thread (`kiln dags test`): >= 5,000 TI/s', fullMap ? mapping.byExecutor.thread?.mapped.tiPerSec.median : null, 5_000, 'higher', 'TI/s'));
  out.push(target('expansion of a map over 10,000 items (planning + the store write), SQLite: < 100 ms (median)', fullMap ? mapping.expansion.totalMs.median : null, 100, 'lower', 'ms'));
  // Remote workers (the bullmq executor, 2 kiln worker hosts on this machine): 40 runs x 40
  // noop tasks only (not the smoke scale's 2 x 5); skipped without redis-server: not measured.
  const remote = result(doc, 'remote');
  const fullRemote = remote?.params?.runs === 40 && remote.params.tasks === 40;
  for (const iso of ['thread', 'process']) {
    const x = fullRemote ? remote.byIsolation?.[iso] : null;
    out.push(target(`remote workers (bullmq, 2 hosts), 40 runs x 40 noop tasks through Redis, ${iso}: >= 2,000 TI/s`, x?.remote.tiPerSec.median, 2_000, 'higher', 'TI/s'));
    out.push(target(`remote workers, ${iso}: >= 25% of the local ${iso} executor's TI/s`, x ? x.ratio * 100 : null, 25, 'higher', '%'));
    out.push(target(`remote workers, ${iso}: p50 added latency per task (remote p50 - local p50) <= 2 ms`, x?.addedLatencyMs.p50, 2, 'lower', 'ms'));
  }
  // PostgreSQL end to end (the postgres case): judged at 40 x 40 and 80 x 40 only (not the smoke scale's);
  // skipped without a server: not measured.
  const pgCase = result(doc, 'postgres');
  const pgE2e = pgCase?.e2e?.runs === 40 && pgCase.e2e.tasks === 40 ? pgCase.e2e : null;
  out.push(target('40 runs x 40 noop tasks end to end on PostgreSQL (local server), thread: >= 40% of the SQLite TI/s', pgE2e ? pgE2e.ratio * 100 : null, 40, 'higher', '%'));
  const pgTwo = pgCase?.schedulers?.runs === 80 && pgCase.schedulers.tasks === 40 ? pgCase.schedulers : null;
  out.push(target('two kiln schedulers sharing PostgreSQL, 80 runs x 40 noop tasks: >= 1.0x one scheduler (TI/s, start to every run finished)', pgTwo?.ratio, 1, 'higher', 'x'));
  return out;
}

/** [figure, value] rows for the report's headline table and the README. */
export function headlineRows(doc) {
  const rows = [];
  const limits = result(doc, 'limits');
  const modes = result(doc, 'executor-modes');
  for (const s of modes?.scenarios ?? []) {
    if (s.id !== 'noop-40x40' && s.id !== 'noop-12x1') continue;
    for (const mode of ['thread', 'process', 'spawn']) {
      const m = s.modes[mode];
      if (!m) continue;
      const speed = mode !== 'spawn' && s.speedupOverSpawn?.[mode] ? `, ${fmt(s.speedupOverSpawn[mode])}x spawn` : '';
      rows.push([`${s.label}, ${mode}`, `${fmt(m.wallMs.median)} ms wall, ${fmt(m.tiPerSec.median)} TI/s${speed}`]);
    }
  }
  if (limits) {
    for (const row of limits.executorAlone?.rows ?? []) {
      if (row.system === 'kiln-thread' || row.system === 'kiln-process') rows.push([`kiln executor alone (no engine, no DB), ${row.system.slice(5)}, ${row.inFlight} in flight`, `${fmt(row.tasksPerSec)} tasks/s, round trip ${fmt(row.medianMs)} ms`]);
    }
    rows.push(['limit: piscina noop', `${fmt(limits.piscina.tasksPerSec.median)} tasks/s`]);
    rows.push(['limit: tinypool child_process noop', `${fmt(limits.tinypool.tasksPerSec.median)} tasks/s`]);
    rows.push(['limit: `node -e 0`', `${fmt(limits.spawn.startMs.median)} ms, ${fmt(limits.spawn.spawnsPerSec.median)} spawns/s in parallel`]);
  }
  const dt = result(doc, 'dags-test');
  for (const [executor, e] of Object.entries(dt?.byExecutor ?? {})) {
    rows.push([`dags test, 100-task noop DAG, ${executor}: ms per task, warm context (chain) / context once per run / context per task`, `${fmt(e.warmChainMsPerTask.median)} / ${fmt(e.cliMsPerTask.median)} / ${fmt(e.perTaskMsPerTask.median)} ms`]);
  }
  const mem = result(doc, 'scheduler-memory');
  if (mem?.kiln) rows.push(['scheduler loop allocation, 2,000 / 20,000 TIs: kiln vs naive', `kiln ${fmtBytes(mem.kiln.small)} / ${fmtBytes(mem.kiln.large)}; naive ${fmtBytes(mem.naive.small)} / ${fmtBytes(mem.naive.large)}`]);
  const prep = result(doc, 'prepared');
  for (const r of prep?.headline ?? []) rows.push([r.label, r.value]);
  const bull = result(doc, 'bullmq');
  const metrics = result(doc, 'metrics');
  if (metrics?.variants) rows.push([`${metrics.params.runs} runs x 40 noop tasks, thread: metrics off / on (scraped every second)`, `${fmt(metrics.variants.off.tiPerSec.median)} / ${fmt(metrics.variants.on.tiPerSec.median)} TI/s, on/off ${fmt(metrics.ratio)}x`]);
  const web = result(doc, 'web');
  if (web?.grid) {
    const p = web.params;
    rows.push([`grid of ${p.runs} runs x ${p.tasks} tasks (${fmt(p.cells)} TIs), SQLite: server time / loopback HTTP`, `${fmt(web.grid.serverMs.median)} / ${fmt(web.grid.httpMs.median)} ms (${fmtBytes(web.grid.bytes)} of JSON)`]);
    if (web.browser?.paintedMs) rows.push([`grid of ${fmt(p.cells)} cells painted in Chromium, from navigation`, `${fmt(web.browser.paintedMs.median)} ms (grid response at ${fmt(web.browser.gridFetchEndMs.median)} ms)`]);
    rows.push([`${fmtBytes(web.log.fileBytes)} log: tail first response / live tail first event${web.browser?.logOpenMs ? ' / shown in Chromium after the click' : ''}`, `${fmt(web.log.firstMs)} / ${fmt(web.log.streamFirstEventMs.median)}${web.browser?.logOpenMs ? ` / ${fmt(web.browser.logOpenMs.median)}` : ''} ms`]);
  }
  const mapping = result(doc, 'mapping');
  if (mapping?.byExecutor) {
    const n = fmt(mapping.params.items);
    for (const [executor, e] of Object.entries(mapping.byExecutor)) {
      rows.push([`one run over ${n} items, ${executor}: mapped / ${n} static tasks (\`kiln dags test\`)`, `${fmt(e.mapped.tiPerSec.median)} / ${fmt(e.static.tiPerSec.median)} TI/s (${fmt(e.ratio.tiPerSec)}x); peak RSS ${fmtBytes(e.mapped.peakRssBytes.median)} / ${fmtBytes(e.static.peakRssBytes.median)}`]);
    }
    rows.push([`expansion of a map over ${n} items: planning + store write`, `${fmt(mapping.expansion.planMs.median)} + ${fmt(mapping.expansion.writeMs.median)} = ${fmt(mapping.expansion.totalMs.median)} ms`]);
  }
  if (bull?.ratios) rows.push([`${fmt(bull.params.jobs)} noop jobs: kiln thread / process vs BullMQ worker threads`, `${fmt(bull.ratios.threadOverBullmq)}x / ${fmt(bull.ratios.processOverBullmq)}x`]);
  if (bull?.bullmqProcess) rows.push([`${fmt(bull.params.jobs)} noop jobs, like with like: kiln process vs BullMQ sandboxed child processes`, `${fmt(bull.process.jobsPerSec.median)} / ${fmt(bull.bullmqProcess.jobsPerSec.median)} per s (${fmt(bull.ratios.processOverBullmqProcess)}x)`]);
  const remote = result(doc, 'remote');
  for (const [iso, x] of Object.entries(remote?.byIsolation ?? {})) {
    const p = remote.params;
    rows.push([`${p.runs} runs x ${p.tasks} noop tasks, ${iso}: remote (bullmq, ${p.hosts} kiln worker hosts) / local executor`, `${fmt(x.remote.tiPerSec.median)} / ${fmt(x.local.tiPerSec.median)} TI/s (${fmt(x.ratio * 100)}%); latency p50 ${fmt(x.remote.latencyMs.p50)} / ${fmt(x.local.latencyMs.p50)} ms, added ${fmt(x.addedLatencyMs.p50)} ms`]);
  }
  const pgCase = result(doc, 'postgres');
  if (pgCase?.e2e) rows.push([`${pgCase.e2e.runs} runs x ${pgCase.e2e.tasks} noop tasks, thread: PostgreSQL / SQLite`, `${fmt(pgCase.e2e.postgres.tiPerSec.median)} / ${fmt(pgCase.e2e.sqlite.tiPerSec.median)} TI/s (${fmt(pgCase.e2e.ratio * 100)}%); ${fmt(pgCase.e2e.postgres.roundTripsPerTi)} round trips per TI`]);
  if (pgCase?.schedulers) rows.push([`${pgCase.schedulers.runs} runs x ${pgCase.schedulers.tasks} noop tasks on PostgreSQL: one / two \`kiln scheduler\` processes`, `${fmt(pgCase.schedulers.one.tiPerSec.median)} / ${fmt(pgCase.schedulers.two.tiPerSec.median)} TI/s (${fmt(pgCase.schedulers.ratio)}x), start to every run finished`]);
  return rows;
}
