/**
 * Case 1, executor modes (the seed's fork-vs-subprocess table): the 12-task example DAG
 * with 1, 3 and 40 concurrent runs, and 40 runs of a 40-task DAG, with noop tasks and with
 * ~5 ms CPU-work tasks, for thread, process and spawn, end to end: the run engine, the
 * executor and SQLite (a scratch file per mode), several runs at once.
 *
 * One warm mode server per mode (bench/lib/mode-server.mjs) stays open for the whole case;
 * each scenario runs interleaved across the modes (thread, process, spawn, thread, ...).
 */
import { join } from 'node:path';
import { calibrateSpin, EXAMPLE_DAG, writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { startModeServer } from '../lib/mode-client.mjs';
import { fmt, fmtBytes, fmtPercent, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { max, median, p99, ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'executor-modes';
export const title = 'Executor modes: thread, process and spawn end to end (case 1)';
export const MODES = ['thread', 'process', 'spawn'];

/**
 * Scenarios in report order. `runsFor` is how many of the scenario's runs each mode runs at
 * this scale: fewer than `runs` means sampled (same DAG, fewer concurrent runs; the report
 * says so and compares TI/s). Spawn is sampled except in the full run's noop scenarios; at
 * --quick the 40-run CPU scenarios are sampled for every mode.
 */
function scenarios(scale) {
  const all = [];
  for (const work of ['noop', 'cpu5']) {
    for (const [dag, runs] of [['12', 1], ['12', 3], ['12', 40], ['40', 40]]) {
      const pooled = pick(scale, { smoke: runs, quick: work === 'cpu5' && runs === 40 ? 6 : runs, full: runs });
      const spawn = pick(scale, {
        smoke: runs,
        quick: runs === 1 ? 1 : dag === '40' ? 1 : 2,
        full: work === 'noop' ? runs : dag === '40' ? 8 : Math.min(runs, 12),
      });
      all.push({
        id: `${work}-${dag}x${runs}`,
        label: `${dag === '12' ? '12-task example DAG' : '40-task DAG'}, ${runs} run${runs > 1 ? 's' : ''}, ${work === 'noop' ? 'noop' : '~5 ms CPU'} tasks`,
        work, dag, runs,
        reps: pick(scale, { smoke: 1, quick: runs === 1 ? 5 : work === 'cpu5' ? 1 : 2, full: runs === 1 ? 20 : runs === 3 ? 10 : 5 }),
        spawnReps: pick(scale, { smoke: 1, quick: 1, full: runs <= 3 ? 3 : 1 }),
        runsFor: { thread: pooled, process: pooled, spawn },
      });
    }
  }
  if (scale === 'smoke') return all.filter((s) => s.id === 'noop-12x1');
  return all;
}

export async function run({ scale, log, tmpDir, options = {} }) {
  const spinIterations = calibrateSpin(5);
  const files = {
    'noop-12': EXAMPLE_DAG,
    'cpu5-12': writeDag(tmpDir, { dagId: 'bench_example_cpu5', shape: 'example', tasks: 12, work: 'cpu5', spinIterations }),
    'noop-40': writeDag(tmpDir, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' }),
    'cpu5-40': writeDag(tmpDir, { dagId: 'bench_wide40_cpu5', shape: 'wide', tasks: 40, work: 'cpu5', spinIterations }),
  };
  const list = scenarios(scale).filter((s) => !options.scenario || s.id === options.scenario);
  const modes = options.modes ?? MODES;
  const servers = {};
  try {
    for (const mode of modes) {
      servers[mode] = startModeServer(mode, { execArgv: options.execArgv ?? [] });
      const info = await servers[mode].call('open', { home: join(tmpDir, mode), config: { executor: mode } });
      servers[mode].info = info;
      for (const s of list) await servers[mode].call('load', { file: files[`${s.work}-${s.dag}`] });
      log(`${mode}: context open (parallelism ${info.parallelism})`);
    }
    // Warm-up: every worker of every pool imports the DAG modules and the JIT sees the paths.
    for (const mode of modes) {
      for (const s of list) {
        if (mode === 'spawn' && s.runs > 1) continue;
        const r = await servers[mode].call('run', { file: files[`${s.work}-${s.dag}`], runs: mode === 'spawn' ? 1 : Math.min(s.runs, s.work === 'cpu5' ? 2 : 8) });
        // Measure what the label says: every task instance ran in this mode's isolation.
        if (r.isolations.length !== 1 || r.isolations[0] !== mode) throw new Error(`${mode} executor ran tasks with isolation ${r.isolations.join(', ')}`);
      }
    }
    log('warm-up done');

    const results = [];
    for (const s of list) {
      const file = files[`${s.work}-${s.dag}`];
      const variants = {};
      for (const mode of modes) {
        const spawn = mode === 'spawn';
        variants[mode] = {
          reps: spawn ? s.spawnReps : s.reps,
          run: () => servers[mode].run({ file, runs: s.runsFor[mode] }),
        };
      }
      const out = await interleave(s.reps, variants);
      const modeResults = {};
      for (const mode of modes) {
        const reps = out[mode];
        const overhead = reps.flatMap((r) => r.overheadMs);
        modeResults[mode] = {
          reps: reps.length,
          runs: s.runsFor[mode],
          sampled: s.runsFor[mode] < s.runs,
          tis: reps[0]?.tis ?? 0,
          wallMs: summary(reps.map((r) => r.wallMs)),
          tiPerSec: summary(reps.map((r) => r.tiPerSec)),
          overheadMs: { median: median(overhead), p99: p99(overhead), n: overhead.length },
          workMs: { median: median(reps.flatMap((r) => r.workMs)) },
          peakRssBytes: { median: median(reps.map((r) => r.peakRssBytes)), max: max(reps.map((r) => r.peakRssBytes)) },
          cpuMsPerTi: median(reps.map((r) => r.cpuMs / r.tis)),
        };
      }
      const speedupOverSpawn = {};
      for (const mode of ['thread', 'process']) {
        if (!modeResults[mode] || !modeResults.spawn) continue;
        // Same work at the same concurrency: for one run compare wall time, else throughput
        // (spawn may have run fewer runs: TI/s is what stays comparable).
        speedupOverSpawn[mode] = s.runs === 1 && !modeResults.spawn.sampled && !modeResults[mode].sampled
          ? ratio(modeResults.spawn.wallMs.median, modeResults[mode].wallMs.median)
          : ratio(modeResults[mode].tiPerSec.median, modeResults.spawn.tiPerSec.median);
      }
      results.push({ ...s, modes: modeResults, speedupOverSpawn });
      log(`${s.id}: ${modes.map((m) => `${m} ${fmt(modeResults[m].tiPerSec.median)} TI/s, ${fmt(modeResults[m].wallMs.median)} ms`).join('; ')}`);
    }
    return {
      params: { scale, spinIterations, parallelism: servers[modes[0]].info.parallelism, modes },
      scenarios: results,
    };
  } finally {
    for (const server of Object.values(servers)) await server.close();
  }
}

export function render(r, doc) {
  const limits = doc.cases.limits?.result;
  const limitFor = { thread: limits?.piscina.tasksPerSec.median, process: limits?.tinypool.tasksPerSec.median, spawn: limits?.spawn.spawnsPerSec.median };
  const md = [];
  md.push(`Each mode is a warm kiln context (store + executor + run engine, SQLite in a scratch folder) in a process of its own, executor parallelism ${r.params.parallelism} (kiln's default on this machine). A scenario creates N manual runs, hands them to the run engine at once and waits for all to finish; wall time includes creating the runs and committing every state change. Modes are interleaved per repetition. \`noop\` tasks return at once; \`~5 ms CPU\` tasks run a calibrated integer loop (${fmt(r.params.spinIterations)} iterations, measured median in the table). Per-task overhead = time from \`executor.submit()\` to the \`finished\` event reaching the engine, minus the work the task reported; pooled over all task instances of all repetitions. Peak RSS is the mode server's whole process tree (scheduler, pool workers or spawned processes). Fraction of the limit = kiln TI/s over the raw noop throughput of the same mechanism in case 5 (piscina, tinypool, parallel \`node -e 0\`).`);
  md.push('');
  const sampledNotes = [];
  const rows = [];
  for (const s of r.scenarios) {
    for (const mode of r.params.modes) {
      const m = s.modes[mode];
      if (!m) continue;
      if (m.sampled) sampledNotes.push(`${s.id} ${mode}: ${m.runs} of ${s.runs} runs`);
      rows.push([
        s.label, mode, `${m.reps}${m.sampled ? ` (${m.runs} run${m.runs > 1 ? 's' : ''}, sampled)` : ''}`,
        fmtSummary(m.wallMs, 'ms'), fmtSummary(m.tiPerSec), `${fmt(m.overheadMs.median)} / ${fmt(m.overheadMs.p99)}`,
        s.work === 'noop' ? '-' : fmt(m.workMs.median), fmtBytes(m.peakRssBytes.median), fmt(m.cpuMsPerTi),
        mode === 'spawn' ? '1x' : fmtRatio(s.speedupOverSpawn[mode]),
        s.work === 'noop' ? fmtPercent(ratio(m.tiPerSec.median, limitFor[mode])) : '-',
      ]);
    }
  }
  md.push(table(['scenario', 'mode', 'reps', 'wall', 'TI/s', 'overhead/task median / p99 (ms)', 'work/task (ms)', 'peak RSS', 'scheduler-process CPU/TI (ms)', 'speedup over spawn', 'fraction of limit'], rows));
  md.push('');
  if (sampledNotes.length > 0) md.push(`**Sampled at this scale** (fewer concurrent runs of the same DAG, so TI/s is what is compared): ${sampledNotes.join('; ')}. With few runs the serial stretches of the DAG (t1 -> t2 -> t3) leave the executor partly idle, so a sampled TI/s is a lower bound of the mode's saturated throughput, and a speedup over a sampled spawn leans in kiln's favour; the targets are judged on the full run, where the noop scenarios are not sampled. Spawn also runs fewer repetitions than thread and process (the reps column).`);
  md.push('');
  md.push('For 1 run the speedup is the ratio of wall times; otherwise the ratio of TI/s. The seed (Airflow 1.10, LocalExecutor, 12-task DAG, 1 run): 137 s with a subprocess per task, 14.35 s with a forked warm process (9.55x).');
  const charts = [];
  const noop = r.scenarios.filter((s) => s.work === 'noop');
  const bars = [];
  for (const s of r.scenarios) {
    for (const mode of ['thread', 'process']) {
      if (s.speedupOverSpawn[mode] === undefined) continue;
      bars.push({ label: `${s.id} ${mode}`, value: s.speedupOverSpawn[mode], color: colorFor(mode), text: fmtRatio(s.speedupOverSpawn[mode]) });
    }
  }
  if (bars.length > 0) charts.push({ name: 'executor-speedup', alt: 'Speedup over spawn per scenario', svg: barChart({ title: 'Speedup over spawn (one process per task)', unit: 'x', log: true, bars, target: { value: 300, label: '300x target (40x40 noop)' } }) });
  const tput = [];
  for (const s of noop) for (const mode of r.params.modes) if (s.modes[mode]) tput.push({ label: `${s.id} ${mode}`, value: s.modes[mode].tiPerSec.median, color: colorFor(mode) });
  if (tput.length > 0) charts.push({ name: 'executor-throughput', alt: 'Task instances per second, noop tasks', svg: barChart({ title: 'End-to-end throughput, noop tasks', unit: 'TI/s', log: true, bars: tput }) });
  const frac = [];
  for (const s of noop) for (const mode of r.params.modes) {
    const f = ratio(s.modes[mode]?.tiPerSec.median, limitFor[mode]);
    if (f !== null) frac.push({ label: `${s.id} ${mode}`, value: f * 100, color: colorFor(mode), text: fmtPercent(f) });
  }
  if (frac.length > 0) charts.push({ name: 'executor-fraction-of-limit', alt: 'kiln throughput as a fraction of the raw limit', svg: barChart({ title: 'kiln noop TI/s as % of the raw mechanism (case 5)', unit: '%', bars: frac }) });
  return { markdown: md.join('\n'), charts };
}
