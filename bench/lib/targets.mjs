/**
 * The targets of issues 5, 10 and 12, evaluated from one run's results, and the headline figures the
 * README quotes. A target whose case did not run is reported as not measured.
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
  // Issue 12: metrics on (scraped every second) costs at most 5% of the throughput.
  const metrics = result(doc, 'metrics');
  out.push(target('40 runs x 40 noop tasks, thread: metrics on (scraped every second) >= 0.95x metrics off (TI/s)', metrics?.ratio, 0.95, 'higher', 'x'));
  // Issue 10, item 6: the grid of 100 runs x 100 tasks and a 50 MB log's tail, on SQLite.
  const web = result(doc, 'web');
  const fullGrid = web?.params?.cells === 10_000;
  out.push(target('grid of 100 runs x 100 tasks (10,000 TIs), SQLite: server time < 50 ms (median)', fullGrid ? web.grid.serverMs.median : null, 50, 'lower', 'ms'));
  out.push(target('grid of 100 runs x 100 tasks painted in Chromium < 500 ms from navigation (median)', fullGrid ? web.browser?.paintedMs?.median : null, 500, 'lower', 'ms'));
  out.push(target('50 MB log: the tail, first response < 100 ms', web?.log?.fileBytes >= 50 * 2 ** 20 ? web.log.firstMs : null, 100, 'lower', 'ms'));
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
  if (bull?.ratios) rows.push([`${fmt(bull.params.jobs)} noop jobs: kiln thread / process vs BullMQ worker threads`, `${fmt(bull.ratios.threadOverBullmq)}x / ${fmt(bull.ratios.processOverBullmq)}x`]);
  return rows;
}
