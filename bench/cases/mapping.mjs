/**
 * Case 9, dynamic task mapping (`d.map()`): one run of a DAG whose `list` task returns
 * 10,000 numbers and whose `noop` task is mapped over them (10,001 task instances), against
 * the same 10,000 noop tasks declared statically, each downstream of `list` (bench/lib/dags.mjs
 * writeMapDags). SQLite, maxActiveTasks 64, kiln's default parallelism.
 *
 * 1. End to end, per executor (thread, process): `kiln dags test <file> --executor X --json`
 *    as a user runs it, each run in a fresh process with a fresh SQLite file, the four
 *    variants interleaved (thread mapped, thread static, process mapped, process static,
 *    rotated each round). TI/s = task instances of the run / its `durationMs` (the JSON's:
 *    from recording the DAG to the run's end: run creation, the expansion, every task, every
 *    commit; not parsing the file or opening the context). Peak RSS per run: the command's
 *    process tree sampled from here every 50 ms (scheduler process plus, with process, its
 *    pool children), and the scheduler process's own peak as the kernel counts it
 *    (getrusage maxRSS, written at exit by bench/lib/rusage-at-exit.mjs).
 * 2. The expansion itself, in this process on a warm context (thread): the engine's handling
 *    of `list`'s finished event (it plans the expansion there: the 10,000 rows built, added
 *    to the run in memory and queued), plus the one store write (`store.write`) whose batch
 *    carries the expansion (10,000 rows inserted, the placeholder deleted, the change feed's
 *    rows). The static DAG's counterpart: the run creation that inserts its 10,001 rows.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMapDags } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { openBenchContext } from '../lib/kiln.mjs';
import { fmt, fmtBytes, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { startRssSampler } from '../lib/rss.mjs';
import { pick } from '../lib/scale.mjs';
import { ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'mapping';
export const title = 'Task mapping: one run mapping a noop task over 10,000 items against the same tasks declared statically (case 9)';

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const RUSAGE_PRELOAD = new URL('../lib/rusage-at-exit.mjs', import.meta.url).href;
const EXECUTORS = ['thread', 'process'];
const SHAPES = ['mapped', 'static'];
const MAX_ACTIVE_TASKS = 64;
let seq = 0;

export async function run({ scale, log, tmpDir }) {
  const items = pick(scale, { smoke: 300, quick: 10_000, full: 10_000 });
  const reps = pick(scale, { smoke: 1, quick: 3, full: 7 });
  const expansionReps = pick(scale, { smoke: 1, quick: 5, full: 9 });
  const files = writeMapDags(tmpDir, { items, maxActiveTasks: MAX_ACTIVE_TASKS });

  // 1. End to end, a fresh `kiln dags test` process per run.
  if (scale !== 'smoke') {
    // Untimed: the page cache holds node, dist/ and the DAG files.
    for (const shape of SHAPES) await dagsTestCommand(files[shape], 'thread', join(tmpDir, `warm-${shape}`), items);
    log('warm-up done');
  }
  const variants = {};
  for (const executor of EXECUTORS) {
    for (const shape of SHAPES) variants[`${executor}-${shape}`] = { run: () => dagsTestCommand(files[shape], executor, join(tmpDir, `run-${++seq}`), items) };
  }
  // The 1-minute load average after each round (this case's own runs count in it: a thread
  // run keeps both cores busy), for the report.
  const load = { endToEnd: [], expansion: [] };
  const out = await interleave(reps, variants, {
    onRound: (r) => {
      load.endToEnd.push(loadavg()[0]);
      log(`end to end: round ${r + 1}/${reps} done (load ${loadavg()[0].toFixed(2)})`);
    },
  });
  const byExecutor = {};
  for (const executor of EXECUTORS) {
    const e = {};
    for (const shape of SHAPES) {
      const runs = out[`${executor}-${shape}`];
      e[shape] = {
        tis: runs[0].tis,
        durationMs: summary(runs.map((r) => r.durationMs)),
        tiPerSec: summary(runs.map((r) => r.tiPerSec)),
        commandMs: summary(runs.map((r) => r.commandMs)),
        peakRssBytes: summary(runs.map((r) => r.peakRssBytes)),
        processPeakRssBytes: summary(runs.map((r) => r.processPeakRssBytes)),
        cpuMsPerTi: summary(runs.map((r) => r.cpuMs / r.tis)),
        // Round by round (compare with load.endToEnd).
        rounds: runs.map((r) => ({ tiPerSec: r.tiPerSec, durationMs: r.durationMs, peakRssBytes: r.peakRssBytes })),
      };
    }
    e.ratio = {
      tiPerSec: ratio(e.mapped.tiPerSec.median, e.static.tiPerSec.median),
      peakRssBytes: ratio(e.mapped.peakRssBytes.median, e.static.peakRssBytes.median),
    };
    byExecutor[executor] = e;
    log(`${executor}: mapped ${fmt(e.mapped.tiPerSec.median)} TI/s, ${fmtBytes(e.mapped.peakRssBytes.median)}; static ${fmt(e.static.tiPerSec.median)} TI/s, ${fmtBytes(e.static.peakRssBytes.median)}; mapped/static ${fmtRatio(e.ratio.tiPerSec)}`);
  }

  // 2. The expansion, in this process.
  const expansion = await measureExpansion(join(tmpDir, 'expansion'), files, items, expansionReps, log, load.expansion);
  log(`expansion of ${fmt(items)}: planning ${fmt(expansion.planMs.median)} ms + write ${fmt(expansion.writeMs.median)} ms = ${fmt(expansion.totalMs.median)} ms (first in the process: ${fmt(expansion.cold.totalMs)} ms); static run creation ${fmt(expansion.staticCreateRunMs.median)} ms`);
  return {
    params: { items, reps, expansionReps, executors: EXECUTORS, maxActiveTasks: MAX_ACTIVE_TASKS, parallelism: expansion.parallelism },
    byExecutor,
    expansion,
    load,
  };
}

/** The process environment without KILN_* (a user's settings must not reach the measured command). */
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KILN_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * `kiln dags test <file> --executor <executor> --json` in a fresh process whose working
 * folder is a fresh `home` (its own .kiln/kiln.db), its tree's RSS sampled meanwhile.
 */
async function dagsTestCommand(file, executor, home, items) {
  mkdirSync(home, { recursive: true });
  const rusageFile = join(home, 'rusage.json');
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', RUSAGE_PRELOAD, CLI, 'dags', 'test', file, '--executor', executor, '--json'], {
    cwd: home,
    env: cleanEnv({ BENCH_RUSAGE_FILE: rusageFile }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const rss = startRssSampler(child.pid);
  const stdout = [];
  let stderr = '';
  child.stdout.on('data', (c) => stdout.push(c));
  child.stderr.on('data', (c) => (stderr += c));
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? signal));
  });
  const commandMs = performance.now() - t0;
  const peakRssBytes = rss.stop();
  if (code !== 0) throw new Error(`kiln dags test ${file} --executor ${executor} exited with ${code}: ${stderr.slice(-2000)}`);
  const report = JSON.parse(Buffer.concat(stdout).toString('utf8'));
  const failed = report.tasks.filter((t) => t.state !== 'success');
  if (report.state !== 'success' || failed.length > 0) throw new Error(`kiln dags test ${file} --executor ${executor} ended ${report.state}: ${failed.slice(0, 3).map((t) => `${t.taskId}[${t.mapIndex}] ${t.state} ${t.error ?? ''}`).join('; ')}`);
  if (report.tasks.length !== items + 1) throw new Error(`kiln dags test ${file}: ${report.tasks.length} task instances, expected ${items + 1}`);
  const isolations = new Set(report.tasks.map((t) => t.isolation));
  if (isolations.size !== 1 || !isolations.has(executor)) throw new Error(`kiln dags test --executor ${executor} ran tasks with isolation ${[...isolations].join(', ')}`);
  const usage = JSON.parse(readFileSync(rusageFile, 'utf8'));
  rmSync(home, { recursive: true, force: true });
  const tis = report.tasks.length;
  return {
    tis,
    durationMs: report.durationMs,
    tiPerSec: tis / (report.durationMs / 1000),
    commandMs,
    peakRssBytes,
    processPeakRssBytes: usage.maxRSS * 1024,
    // The scheduler process (in thread mode its worker threads too), the whole command.
    cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000,
  };
}

/**
 * Runs the mapped and the static DAG (interleaved, after one untimed run of each: the first
 * expansion in the process is kept as the cold figure) on one warm thread context, and times
 *   planMs        engine.onExecutorEvent(list's `finished` event), synchronous: the engine
 *                 records the result, plans the expansion (planExpansion), adds the rows to
 *                 the run in memory and queues them
 *   writeMs       the store.write whose batch carries `expansions`
 *   latencyMs     from that event reaching the engine to the write committed (a flush in
 *                 progress is waited for)
 * and, for the static DAG, store.createRun (its 10,001 rows inserted at run creation).
 */
async function measureExpansion(home, files, items, reps, log, load) {
  const bench = await openBenchContext(home, { executor: 'thread' });
  try {
    const { ctx } = bench;
    const mapped = await bench.loadDag(files.mapped);
    const statik = await bench.loadDag(files.static);
    let current = null;
    const listKeys = new Set();
    const submit = ctx.executor.submit;
    ctx.executor.submit = (work) => {
      if (work.taskId === 'list') listKeys.add(work.key);
      return submit.call(ctx.executor, work);
    };
    const onEvent = ctx.engine.onExecutorEvent;
    ctx.engine.onExecutorEvent = (event) => {
      if (event.type !== 'finished' || !listKeys.delete(event.key)) return onEvent(event);
      const t0 = performance.now();
      onEvent(event);
      current.listFinishedAt = t0;
      current.planMs = performance.now() - t0;
    };
    const store = ctx.store;
    const write = store.write;
    store.write = async (batch) => {
      if (!batch.expansions?.length) return write.call(store, batch);
      const t0 = performance.now();
      const result = await write.call(store, batch);
      const t1 = performance.now();
      current.writes.push({
        ms: t1 - t0,
        doneAt: t1,
        rows: batch.expansions.reduce((n, e) => n + e.rows.length, 0),
        applied: result.expansions,
        otherTiWrites: batch.tis?.length ?? 0,
        xcoms: batch.xcoms?.length ?? 0,
      });
      return result;
    };
    const createRun = store.createRun;
    store.createRun = async (row, tis) => {
      const t0 = performance.now();
      const result = await createRun.call(store, row, tis);
      current.createRunMs = performance.now() - t0;
      current.createRunRows = tis.length;
      return result;
    };

    const once = async (found, shape) => {
      current = { shape, writes: [], planMs: null, listFinishedAt: null, createRunMs: null, createRunRows: null };
      const { wallMs, tis } = await bench.runConcurrent(found, 1);
      const r = current;
      current = null;
      if (shape === 'static') {
        if (r.writes.length !== 0) throw new Error('the static DAG wrote an expansion');
        return { createRunMs: r.createRunMs, createRunRows: r.createRunRows, wallMs, tis };
      }
      if (r.writes.length !== 1 || r.writes[0].rows !== items || r.writes[0].applied?.[0] !== true || r.planMs === null) {
        throw new Error(`expected one applied expansion of ${items} rows, got ${JSON.stringify(r.writes.map(({ rows, applied }) => ({ rows, applied })))}`);
      }
      const w = r.writes[0];
      return { planMs: r.planMs, writeMs: w.ms, totalMs: r.planMs + w.ms, latencyMs: w.doneAt - r.listFinishedAt, otherTiWrites: w.otherTiWrites, xcoms: w.xcoms, createRunMs: r.createRunMs, wallMs, tis };
    };
    const cold = await once(mapped, 'mapped');
    const staticCold = await once(statik, 'static');
    log(`expansion: first in the process ${fmt(cold.totalMs)} ms (planning ${fmt(cold.planMs)}, write ${fmt(cold.writeMs)}); static run creation ${fmt(staticCold.createRunMs)} ms`);
    const out = await interleave(reps, { mapped: { run: () => once(mapped, 'mapped') }, static: { run: () => once(statik, 'static') } }, {
      onRound: (r) => {
        load.push(loadavg()[0]);
        log(`expansion: round ${r + 1}/${reps} done (load ${loadavg()[0].toFixed(2)})`);
      },
    });
    const m = out.mapped;
    return {
      executor: 'thread',
      // The same defaults as the commands above (no config file, no KILN_* environment).
      parallelism: bench.config.parallelism,
      rows: items,
      planMs: summary(m.map((r) => r.planMs)),
      writeMs: summary(m.map((r) => r.writeMs)),
      totalMs: summary(m.map((r) => r.totalMs)),
      latencyMs: summary(m.map((r) => r.latencyMs)),
      // What else rode in the expansion's batch (the list's own success, its XCom, ...).
      batchOtherTiWrites: m[0].otherTiWrites,
      batchXcoms: m[0].xcoms,
      mappedCreateRunMs: summary(m.map((r) => r.createRunMs)),
      staticCreateRunMs: summary(out.static.map((r) => r.createRunMs)),
      staticCreateRunRows: out.static[0].createRunRows,
      cold: { planMs: cold.planMs, writeMs: cold.writeMs, totalMs: cold.totalMs, latencyMs: cold.latencyMs },
      staticColdCreateRunMs: staticCold.createRunMs,
      inProcessTiPerSec: {
        mapped: summary(m.map((r) => r.tis / (r.wallMs / 1000))),
        static: summary(out.static.map((r) => r.tis / (r.wallMs / 1000))),
      },
    };
  } finally {
    await bench.close();
  }
}

export function render(r) {
  const p = r.params;
  const x = r.expansion;
  const rows = [];
  for (const executor of p.executors) {
    const e = r.byExecutor[executor];
    for (const shape of SHAPES) {
      const s = e[shape];
      rows.push([
        executor,
        shape === 'mapped' ? `mapped: \`d.map('noop', ..., { over: list })\`` : `static: ${fmt(p.items)} \`d.task()\``,
        fmt(s.tis),
        fmtSummary(s.tiPerSec),
        fmtSummary(s.durationMs, 'ms'),
        fmtSummary(s.commandMs, 'ms'),
        fmtBytes(s.peakRssBytes.median),
        fmtBytes(s.processPeakRssBytes.median),
        fmt(s.cpuMsPerTi.median),
      ]);
    }
    rows.push([executor, '**mapped / static**', '', `**${fmtRatio(e.ratio.tiPerSec)}**`, '', '', `**${fmtRatio(e.ratio.peakRssBytes)}**`, fmtRatio(ratio(e.mapped.processPeakRssBytes.median, e.static.processPeakRssBytes.median)), '']);
  }
  const md = [
    `One run of a DAG whose \`list\` task returns ${fmt(p.items)} numbers and whose \`noop\` task is mapped over them (\`(ctx) => ctx.item\`), against the same ${fmt(p.items)} noop tasks declared one by one (each returns its index, downstream of \`list\`): ${fmt(p.items + 1)} task instances either way, SQLite, maxActiveTasks ${p.maxActiveTasks}, kiln's default parallelism (${p.parallelism} here). Each run is \`kiln dags test <file> --executor <thread|process> --json\` in a fresh process with a fresh SQLite file; ${p.reps} interleaved rounds of the four variants. TI/s = task instances / the run's \`durationMs\` from the JSON (run creation, the expansion, every task and every commit; parsing the DAG file and opening the context are in the command's wall time only). Peak RSS: the command's process tree sampled every 50 ms (with process, the pool's children included); the scheduler process alone as the kernel counts it (getrusage maxRSS). CPU/TI: the scheduler process (with thread, its worker threads too).`,
    '',
    table(['executor', 'DAG', 'TIs', 'TI/s', 'run (durationMs)', 'command wall', 'peak RSS, process tree', 'peak RSS, scheduler process', 'CPU/TI (ms)'], rows),
    '',
    `**The expansion** (in the case process, a warm thread context; ${x.totalMs.n} interleaved rounds after one untimed run of each DAG): planning is the engine's synchronous handling of \`list\`'s finished event (the result recorded, \`planExpansion\`, ${fmt(x.rows)} instances built, added to the run in memory and queued to run); the write is the one \`store.write\` transaction carrying the expansion (the placeholder deleted, ${fmt(x.rows)} rows inserted, their change-feed rows, plus ${x.batchOtherTiWrites} other task-instance write(s) and ${x.batchXcoms} XCom(s) of the same flush, in the first measured round).`,
    '',
    table(['', 'median (min-max)', 'first in the process (cold JIT)'], [
      ['planning (ms)', fmtSummary(x.planMs), fmt(x.cold.planMs)],
      ['the store write carrying the expansion (ms)', fmtSummary(x.writeMs), fmt(x.cold.writeMs)],
      ['**expansion: planning + write (ms)**', `**${fmtSummary(x.totalMs)}**`, fmt(x.cold.totalMs)],
      ['list finished -> expansion committed (ms; waits for a flush in progress)', fmtSummary(x.latencyMs), fmt(x.cold.latencyMs)],
      [`static DAG: run creation, ${fmt(x.staticCreateRunRows)} rows inserted (ms)`, fmtSummary(x.staticCreateRunMs), fmt(x.staticColdCreateRunMs)],
      ['mapped DAG: run creation, 2 rows (ms)', fmtSummary(x.mappedCreateRunMs), ''],
    ]),
    '',
    `Load average (1 min) after each round: end to end ${r.load.endToEnd.map((l) => l.toFixed(2)).join(', ')}; expansion ${r.load.expansion.map((l) => l.toFixed(2)).join(', ')} (this case's own runs count in it: a thread run keeps both cores busy).`,
    '',
    `In that warm process the whole run went at ${fmtSummary(x.inProcessTiPerSec.mapped)} TI/s mapped, ${fmtSummary(x.inProcessTiPerSec.static)} TI/s static (thread).`,
  ].join('\n');
  const bars = [];
  for (const executor of p.executors) {
    for (const shape of SHAPES) bars.push({ label: `${executor}, ${shape}`, value: r.byExecutor[executor][shape].tiPerSec.median, color: colorFor(shape === 'mapped' ? executor : 'limit') });
  }
  const rss = [];
  for (const executor of p.executors) {
    for (const shape of SHAPES) {
      const v = r.byExecutor[executor][shape].peakRssBytes.median;
      rss.push({ label: `${executor}, ${shape}`, value: v / 2 ** 20, color: colorFor(shape === 'mapped' ? executor : 'limit'), text: fmtBytes(v) });
    }
  }
  return {
    markdown: md,
    charts: [
      { name: 'mapping-throughput', alt: `One run over ${fmt(p.items)} items: mapped vs static, TI/s`, svg: barChart({ title: `One run, ${fmt(p.items)} noop instances: TI/s, mapped vs static`, unit: 'TI/s', bars, target: { value: 5000, label: '5,000 TI/s target (thread, mapped)' } }) },
      { name: 'mapping-rss', alt: `One run over ${fmt(p.items)} items: peak RSS, mapped vs static`, svg: barChart({ title: `One run, ${fmt(p.items)} noop instances: peak RSS (process tree)`, unit: 'MiB', bars: rss }) },
    ],
  };
}
