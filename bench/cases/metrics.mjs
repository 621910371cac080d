/**
 * Case 7, the cost of kiln's Prometheus metrics (issue 12): 40 runs x 40 noop tasks, thread
 * isolation, SQLite, end to end through the run engine (as executor-modes drives it), with
 * metrics off and with metrics on, interleaved (off, on, on, off, ...).
 *
 * Metrics on is what `kiln scheduler --metrics` wires (bench/lib/kiln.mjs openWithMetrics):
 * the store's write transactions timed, KilnMetrics as the context's observer (executor
 * events, hand-overs, committed task-instance and run changes), Node's default process
 * metrics, `/metrics` served over HTTP. A scraper in this (case) process, as Prometheus
 * would be, GETs `/metrics` once per second of the metrics-on server's measured run time:
 * the timer only runs while that server runs a measured repetition and carries its phase
 * from one repetition to the next, so the repetitions of 40 x 40 (well under a second each)
 * carry one scrape per second between them, and the cost of serving every scrape (the
 * registry's text, the database gauges' query when their 5 s cache has expired, the HTTP
 * response) falls inside the measured time. Each variant is a warm mode server of its own
 * (bench/lib/mode-server.mjs) with its own SQLite file.
 *
 * After the last repetition one more scrape (untimed) checks that the metrics counted what
 * ran: kiln_task_instance_finishes_total{state="success"} of the DAG equals every task
 * instance the metrics-on server ran, warm-up included, and no series carries a run id.
 */
/* global fetch -- Node's own (undici, keep-alive: one connection reused, as Prometheus keeps it) */
import { join } from 'node:path';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { startModeServer } from '../lib/mode-client.mjs';
import { fmt, fmtBytes, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { max, median, ratio, summary } from '../lib/stats.mjs';
import { barChart } from '../lib/svg.mjs';

export const id = 'metrics';
export const title = 'Prometheus metrics on vs off: 40 runs x 40 noop tasks, thread, SQLite (case 7)';

const VARIANTS = ['off', 'on'];
/**
 * `--options '{"control":true}'` adds a third server, `off2`, metrics off like `off`: the
 * off2/off ratio (an A/A comparison) shows how far two identical sides drift apart on this
 * machine in this run, the resolution of the on/off ratio.
 */
const variantsFor = (options) => (options.control ? [...VARIANTS, 'off2'] : VARIANTS);
const DAG_ID = 'bench_metrics_wide40_noop';

/**
 * GETs `/metrics` every `everyMs` of the time spent inside during(): the phase is carried
 * across calls, so short measured stretches add up to one scrape per `everyMs`. `scrapes`
 * lists the timed ones (those begun inside during()).
 */
function scraper(url, everyMs) {
  let sinceLastMs = 0;
  const scrapes = [];
  async function scrape() {
    const t0 = performance.now();
    const res = await fetch(url);
    const body = await res.text();
    if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${body.slice(0, 200)}`);
    return { ms: performance.now() - t0, bytes: Buffer.byteLength(body), body };
  }
  return {
    scrapes,
    scrape,
    /** Awaits `promise` with the scrape timer running; returns its value and how many scrapes began meanwhile. */
    async during(promise) {
      let mark = performance.now();
      let timer = null;
      let done = false;
      const inFlight = [];
      const arm = (delayMs) => {
        timer = setTimeout(() => {
          if (done) return;
          mark = performance.now();
          sinceLastMs = 0;
          inFlight.push(scrape().then(({ ms, bytes }) => scrapes.push({ ms, bytes })));
          arm(everyMs);
        }, Math.max(0, delayMs));
      };
      arm(everyMs - sinceLastMs);
      try {
        const value = await promise;
        return { value, scrapes: inFlight.length };
      } finally {
        done = true;
        clearTimeout(timer);
        sinceLastMs += performance.now() - mark;
        await Promise.all(inFlight);
      }
    },
  };
}

/** Sum of a metric's samples whose labels include every pair of `want`. */
function sampleSum(text, name, want = {}) {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(want).some(([k, v]) => labels[k] !== v)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    found = true;
  }
  return found ? sum : null;
}

export async function run({ scale, log, tmpDir, options = {} }) {
  const names = variantsFor(options);
  const runs = pick(scale, { smoke: 2, quick: 40, full: 40 });
  const reps = pick(scale, { smoke: 1, quick: 20, full: 60 });
  const warmups = pick(scale, { smoke: 1, quick: 3, full: 5 });
  // Every second as the issue asks; at smoke scale (a few ms of runs) often enough that the
  // timed scrape path runs at all.
  const scrapeEveryMs = pick(scale, { smoke: 5, quick: 1000, full: 1000 });
  const file = writeDag(tmpDir, { dagId: DAG_ID, shape: 'wide', tasks: 40, work: 'noop' });
  const servers = {};
  try {
    for (const v of names) {
      servers[v] = startModeServer(`metrics-${v}`);
      servers[v].info = await servers[v].call('open', { home: join(tmpDir, v), config: { executor: 'thread' }, metrics: v === 'on' });
      await servers[v].call('load', { file });
      log(`metrics ${v}: context open (parallelism ${servers[v].info.parallelism}${servers[v].info.metricsUrl ? `, ${servers[v].info.metricsUrl}` : ''})`);
    }
    if (!servers.on.info.metricsUrl || servers.off.info.metricsUrl) throw new Error('metrics on/off servers are not what their names say');
    const scrapes = scraper(servers.on.info.metricsUrl, scrapeEveryMs);
    const first = await scrapes.scrape();
    let tisOn = 0;
    // Warm-up: the pool's workers import the DAG module, the JIT sees the paths (untimed, unscraped).
    for (let i = 0; i < warmups; i++) {
      for (const v of names) {
        const r = await servers[v].call('run', { file, runs });
        if (r.isolations.length !== 1 || r.isolations[0] !== 'thread') throw new Error(`metrics ${v}: tasks ran with isolation ${r.isolations.join(', ')}`);
        if (v === 'on') tisOn += r.tis;
      }
    }
    log('warm-up done');

    const out = await interleave(reps, {
      off: { run: () => servers.off.run({ file, runs }) },
      ...(servers.off2 ? { off2: { run: () => servers.off2.run({ file, runs }) } } : {}),
      on: {
        run: async () => {
          const { value, scrapes: n } = await scrapes.during(servers.on.run({ file, runs }));
          tisOn += value.tis;
          return { ...value, scrapes: n };
        },
      },
    });

    const last = await scrapes.scrape();
    const finished = sampleSum(last.body, 'kiln_task_instance_finishes_total', { dag_id: DAG_ID, state: 'success' });
    if (finished !== tisOn) throw new Error(`kiln_task_instance_finishes_total{state="success"} is ${finished}, but the metrics-on server ran ${tisOn} task instances`);
    if (/run_id="/.test(last.body)) throw new Error('a series carries a run id');
    const series = last.body.split('\n').filter((l) => l && !l.startsWith('#')).length;

    // All task instances over all measured wall time of a variant: symmetric in wall time and
    // TI/s (a nearest-rank median of an even number of repetitions is not).
    const pooled = (list) => list.reduce((s, r) => s + r.tis, 0) / (list.reduce((s, r) => s + r.wallMs, 0) / 1000);
    const variants = {};
    for (const v of names) {
      const list = out[v];
      variants[v] = {
        reps: list.length,
        runs,
        tis: list[0]?.tis ?? 0,
        wallMs: summary(list.map((r) => r.wallMs)),
        tiPerSec: summary(list.map((r) => r.tiPerSec)),
        cpuMsPerTi: median(list.map((r) => r.cpuMs / r.tis)),
        overheadMs: { median: median(list.flatMap((r) => r.overheadMs)) },
        peakRssBytes: { median: median(list.map((r) => r.peakRssBytes)), max: max(list.map((r) => r.peakRssBytes)) },
        pooledTiPerSec: pooled(list),
        perRep: list.map((r) => ({ wallMs: r.wallMs, tiPerSec: r.tiPerSec, cpuMs: r.cpuMs, ...(r.scrapes !== undefined ? { scrapes: r.scrapes } : {}) })),
      };
    }
    // Per round (one off and one on repetition back to back): drift of the machine cancels.
    const paired = out.on.map((r, i) => ratio(r.tiPerSec, out.off[i]?.tiPerSec)).filter((x) => x !== null);
    const onSeconds = out.on.reduce((s, r) => s + r.wallMs, 0) / 1000;
    const result = {
      params: { scale, runs, tasksPerRun: 40, reps, warmups, parallelism: servers.off.info.parallelism, scrapeEveryMs, dagId: DAG_ID },
      variants,
      ratio: ratio(variants.on.tiPerSec.median, variants.off.tiPerSec.median),
      pairedRatio: summary(paired),
      pooledRatio: ratio(variants.on.pooledTiPerSec, variants.off.pooledTiPerSec),
      ...(variants.off2 ? { controlRatio: ratio(variants.off2.tiPerSec.median, variants.off.tiPerSec.median), controlPairedRatio: summary(out.off2.map((r, i) => ratio(r.tiPerSec, out.off[i]?.tiPerSec)).filter((x) => x !== null)) } : {}),
      cpuRatio: ratio(variants.on.cpuMsPerTi, variants.off.cpuMsPerTi),
      scrapes: {
        duringMeasured: out.on.reduce((s, r) => s + r.scrapes, 0),
        measuredSeconds: onSeconds,
        clientMs: summary(scrapes.scrapes.map((s) => s.ms)),
        bytes: last.bytes,
        firstBytes: first.bytes,
        series,
      },
      check: { tisOn, finishesSuccess: finished },
    };
    log(`off ${fmt(variants.off.tiPerSec.median)} TI/s, on ${fmt(variants.on.tiPerSec.median)} TI/s: on/off ${fmt(result.ratio)} (paired median ${fmt(result.pairedRatio.median)}, pooled ${fmt(result.pooledRatio)}, CPU/TI ${fmt(result.cpuRatio)}); ${result.scrapes.duringMeasured} scrapes in ${fmt(onSeconds)} s measured`);
    return result;
  } finally {
    for (const server of Object.values(servers)) await server.close();
  }
}

export function render(r) {
  const md = [];
  const p = r.params;
  md.push(`Two warm kiln contexts (store + executor + run engine, SQLite in a scratch folder each, executor \`thread\`, parallelism ${p.parallelism}), each in a process of its own, driven as in case 1: a repetition creates ${p.runs} manual runs of a ${p.tasksPerRun}-task noop DAG, hands them to the run engine at once and waits for all to finish; wall time includes creating the runs and committing every state change. **Metrics on** is wired as \`kiln scheduler --metrics\` wires it: the store's write transactions timed, \`KilnMetrics\` as the context's observer, Node's default process metrics, \`/metrics\` served over HTTP; a scraper in the case process (as Prometheus would be) GETs \`/metrics\` once per ${p.scrapeEveryMs >= 1000 ? `${p.scrapeEveryMs / 1000} s` : `${p.scrapeEveryMs} ms`} of the metrics-on side's measured time (the timer runs only during its repetitions and keeps its phase across them), so serving the scrapes is inside the measured time. The scheduler loop's own hooks (loop duration, heartbeats, DAG folder passes: once per tick, not per task) are not exercised: there is no scheduler loop here. Off and on are interleaved (off, on, on, off, ...), ${p.warmups} untimed warm-up repetition(s) each first.`);
  md.push('');
  const names = Object.keys(r.variants);
  const rows = names.map((v) => {
    const m = r.variants[v];
    return [v, m.reps, fmtSummary(m.wallMs, 'ms'), fmtSummary(m.tiPerSec), fmt(m.overheadMs.median), fmtBytes(m.peakRssBytes.median), fmt(m.cpuMsPerTi)];
  });
  md.push(table(['metrics', 'reps', 'wall', 'TI/s', 'overhead/task median (ms)', 'peak RSS', 'scheduler-process CPU/TI (ms)'], rows));
  md.push('');
  md.push(`**On / off: ${fmtRatio(r.ratio)}** (median TI/s over median TI/s); per round (one off and one on repetition back to back) median ${fmtRatio(r.pairedRatio.median)}, range ${fmt(r.pairedRatio.min)}-${fmt(r.pairedRatio.max)}; all task instances over all measured wall time, on / off: ${fmt(r.variants.on.pooledTiPerSec)} / ${fmt(r.variants.off.pooledTiPerSec)} TI/s = ${fmtRatio(r.pooledRatio)}. Scheduler-process CPU per task instance, on / off: ${fmtRatio(r.cpuRatio)}.`);
  md.push('');
  if (r.controlRatio !== undefined) {
    md.push(`**Control (A/A):** a second metrics-off server, \`off2\`, interleaved with the other two: off2 / off ${fmtRatio(r.controlRatio)} (medians), per round median ${fmtRatio(r.controlPairedRatio.median)}, range ${fmt(r.controlPairedRatio.min)}-${fmt(r.controlPairedRatio.max)}: how far two identical sides land apart in this run.`);
    md.push('');
  }
  md.push(`Scrapes: ${r.scrapes.duringMeasured} during ${fmt(r.scrapes.measuredSeconds)} s of measured metrics-on time, ${fmtSummary(r.scrapes.clientMs, 'ms')} each as the scraper saw it (request to last byte); the exposition was ${fmtBytes(r.scrapes.bytes)} in ${fmt(r.scrapes.series)} samples at the end. Check: \`kiln_task_instance_finishes_total{state="success"}\` = ${fmt(r.check.finishesSuccess)}, every task instance the metrics-on side ran (${fmt(r.check.tisOn)}, warm-up included), and no series carries a run id.`);
  const charts = [{
    name: 'metrics-throughput',
    alt: 'Task instances per second with metrics off and on',
    svg: barChart({
      title: `40 x 40 noop, thread: metrics off vs on (on/off ${fmtRatio(r.ratio)})`,
      unit: 'TI/s',
      bars: names.map((v) => ({ label: `metrics ${v}`, value: r.variants[v].tiPerSec.median, color: v === 'on' ? '#1971c2' : '#2b8a3e' })),
      target: { value: 0.95 * r.variants.off.tiPerSec.median, label: '95% of off' },
    }),
  }];
  return { markdown: md.join('\n'), charts };
}
