/**
 * From one soak's raw result to its figures and targets.
 *
 * Throughput per slice comes from the database, not from the samples: every finished task
 * instance has its ended_at, so the time the 10,000th, 20,000th, ... finished is exact. The
 * first slice starts at the first task instance's end (the scheduler's start-up, pool warm-up
 * and first DAG parse are reported apart, not mixed into a slice).
 *
 * RSS and open fds "at" a point of progress are medians of the once-a-second samples within
 * 2% of the total around it (at the end: the last 4% before the last task instance
 * finished), so one sample taken mid-GC does not decide a target; the single nearest sample
 * is reported beside it.
 */
import { target } from './report.mjs';

const median = (list) => {
  const v = list.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const mean = (list) => {
  const v = list.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

/** Open fds the end may exceed the 20% mark by and still count as flat (see the report). */
export const FD_TOLERANCE = 5;

export function analyzeSoak(result) {
  const total = result.totalTis;
  const sliceTis = total / 10;
  const startEpoch = Date.parse(result.startedAt);
  const samples = result.samples.filter((s) => s.finishedTis !== null).map((s) => ({ ...s, at: startEpoch + s.tMs }));
  const ended = result.final.endedAt;
  const slices = [];
  for (let i = 0; i < 10 && ended.length >= (i + 1) * sliceTis; i++) {
    const from = i === 0 ? ended[0] : ended[i * sliceTis - 1];
    const to = ended[(i + 1) * sliceTis - 1];
    const count = i === 0 ? sliceTis - 1 : sliceTis;
    slices.push({ index: i, fromTi: i * sliceTis, toTi: (i + 1) * sliceTis, fromAt: from, toAt: to, seconds: (to - from) / 1000, tiPerSec: count / ((to - from) / 1000), ...cpuBetween(samples, from, to), triggers: result.triggers.filter((t) => t.atMs !== null && startEpoch + t.atMs >= from && startEpoch + t.atMs < to).length });
  }
  // The last slice ends with a drain: once the last queued run has started, fewer runs are
  // left to run than maxActiveRuns, and the last ones may wait a retry delay with nothing
  // else to do. Its rate up to the start of the last run is the steady part.
  const lastRunStart = Math.max(...result.final.runTimes.map((r) => r.startedAt).filter(Number.isFinite));
  const last = slices.at(-1);
  let lastSteady = null;
  if (last && lastRunStart > last.fromAt) {
    const n = ended.filter((t) => t > last.fromAt && t <= lastRunStart).length;
    lastSteady = { fromAt: last.fromAt, toAt: lastRunStart, tis: n, seconds: (lastRunStart - last.fromAt) / 1000, tiPerSec: n / ((lastRunStart - last.fromAt) / 1000) };
  }
  // Samples after the last task instance finished see a scheduler going idle and stopping
  // its pools: they are no measure of the working one, and are left out of marks and charts.
  const working = samples.filter((s) => s.at <= ended.at(-1));
  const window = 0.02 * total;
  const mark = (lo, hi, at) => {
    const inWindow = working.filter((s) => s.finishedTis >= lo && s.finishedTis <= hi);
    const nearest = working.find((s) => s.finishedTis >= at) ?? working.at(-1);
    const pick = inWindow.length > 0 ? inWindow : nearest ? [nearest] : [];
    return {
      progressFrom: lo, progressTo: hi, samples: pick.length,
      schedulerRssBytes: median(pick.map((s) => s.schedulerRssBytes)),
      workersRssBytes: median(pick.map((s) => s.workers.rssBytes)),
      fds: median(pick.map((s) => s.fds)),
      threads: median(pick.map((s) => s.schedulerThreads)),
      nearest: nearest && { finishedTis: nearest.finishedTis, tMs: nearest.tMs, schedulerRssBytes: nearest.schedulerRssBytes, workersRssBytes: nearest.workers.rssBytes, fds: nearest.fds },
    };
  };
  const at20 = mark(0.2 * total - window, 0.2 * total + window, 0.2 * total);
  const atEnd = mark(total - 2 * window, total, total);
  const after20 = working.filter((s) => s.finishedTis >= 0.2 * total);
  const peakAfter20 = {
    schedulerRssBytes: Math.max(...after20.map((s) => s.schedulerRssBytes)),
    workersRssBytes: Math.max(...after20.map((s) => s.workers.rssBytes)),
    fds: Math.max(...after20.map((s) => s.fds)),
  };

  // The same question asked of every sample from 20% on, robust to where the GC sawtooth
  // happens to be at the two marks: a least-squares line's rise over that span, relative to
  // its value at 20%.
  const trend = (pick) => {
    const pts = after20.map((s) => [s.finishedTis, pick(s)]);
    if (pts.length < 3) return null;
    const n = pts.length;
    const mx = pts.reduce((a, [x]) => a + x, 0) / n;
    const my = pts.reduce((a, [, y]) => a + y, 0) / n;
    const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
    if (sxx === 0) return null;
    const slope = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
    const at = (x) => my + slope * (x - mx);
    return at(total) / at(0.2 * total) - 1;
  };
  const trends = { schedulerRss: trend((s) => s.schedulerRssBytes), workersRss: trend((s) => s.workers.rssBytes), fds: trend((s) => s.fds) };

  const f = result.final;
  const unfinishedTis = Object.entries(f.tiStates).filter(([s]) => !['success', 'failed', 'skipped', 'upstream_failed'].includes(s)).reduce((a, [, n]) => a + n, 0);
  const unfinishedRuns = (f.runStates.queued ?? 0) + (f.runStates.running ?? 0);
  const rssGrowth = at20.schedulerRssBytes && atEnd.schedulerRssBytes ? atEnd.schedulerRssBytes / at20.schedulerRssBytes - 1 : null;
  const fdGrowth = at20.fds !== null && atEnd.fds !== null ? atEnd.fds - at20.fds : null;
  const lastOverFirst = slices.length === 10 ? slices[9].tiPerSec / slices[0].tiPerSec : null;
  const label = (k) => `${fmtK(k * total)}`;
  const targets = [
    target(`scheduler RSS growth from the ${label(0.2)}th to the ${label(1)}th task instance < 10%`, rssGrowth === null ? null : rssGrowth * 100, 10, 'lower', '%'),
    target(`open fds flat: end minus the ${label(0.2)}th task instance <= ${FD_TOLERANCE}`, fdGrowth, FD_TOLERANCE, 'lower', 'fds'),
    target("last slice's throughput >= 90% of the first's", lastOverFirst === null ? null : lastOverFirst * 100, 90, 'higher', '%'),
    {
      name: 'nothing left queued or running at the end (database read after the scheduler exited)',
      goal: 0, better: 'lower', value: unfinishedTis + unfinishedRuns, unit: '', met: unfinishedTis + unfinishedRuns === 0,
      verdict: `${unfinishedTis} task instances not finished, ${unfinishedRuns} runs queued or running`,
    },
  ];
  // Strict < for the RSS target: equal to 10% is a miss.
  if (rssGrowth !== null && rssGrowth * 100 >= 10) Object.assign(targets[0], { met: false });

  const firstEnd = ended[0];
  const lastEnd = ended.at(-1);
  return {
    sliceTis,
    slices,
    lastSteady,
    lastOverFirstSteady: lastSteady && slices[0] ? lastSteady.tiPerSec / slices[0].tiPerSec : null,
    // CPU the scheduler process spent per task instance: unlike TI/s, it hardly moves when
    // other work takes the cores, so a scheduler that slows down as history grows shows here.
    schedulerCpuMsPerTiLastOverFirst: slices.length === 10 && slices[0].schedulerCpuMsPerTi ? slices[9].schedulerCpuMsPerTi / slices[0].schedulerCpuMsPerTi : null,
    serverCpuMsPerTiLastOverFirst: slices.length === 10 && slices[0].serverCpuMsPerTi ? slices[9].serverCpuMsPerTi / slices[0].serverCpuMsPerTi : null,
    marks: { at20, atEnd, peakAfter20 },
    trends,
    rssGrowth,
    fdGrowth,
    lastOverFirst,
    targets,
    totals: {
      finishedTis: ended.length,
      unfinishedTis,
      unfinishedRuns,
      runsSucceeded: f.runStates.success ?? 0,
      runsFailed: f.runStates.failed ?? 0,
      retriedTis: f.tries['2'] ?? 0,
      retriedShare: (f.tries['2'] ?? 0) / Math.max(1, ended.length),
      isolations: f.isolations,
      firstTiAfterSec: (firstEnd - startEpoch) / 1000,
      lastTiAfterSec: (lastEnd - startEpoch) / 1000,
      exitAfterLastTiSec: result.scheduler.wallMs / 1000 - (lastEnd - startEpoch) / 1000,
      tiPerSecOverall: (ended.length - 1) / ((lastEnd - firstEnd) / 1000),
      runMedianSec: median(f.runTimes.map((r) => (r.endedAt - r.startedAt) / 1000)),
    },
    series: { ...seriesFrom(working), logBytes: (result.logSizes ?? []).filter((l) => l.diskBytes).map((l) => [l.finishedTis, l.diskBytes]) },
  };
}

/** CPU use between two instants, from the samples around them: percent of one core. */
function cpuBetween(samples, from, to) {
  const a = [...samples].reverse().find((s) => s.at <= from) ?? samples[0];
  const b = samples.find((s) => s.at >= to) ?? samples.at(-1);
  if (!a || !b || b.at <= a.at) return { schedulerCpuMsPerTi: null, workersCpuMsPerTi: null, schedulerCpuPct: null, workersCpuPct: null, driverCpuPct: null, serverCpuPct: null, serverCpuMsPerTi: null, machineBusyPct: null, load1: null };
  const dt = b.at - a.at;
  const inside = samples.filter((s) => s.at > a.at && s.at <= b.at);
  const tis = b.finishedTis - a.finishedTis;
  return {
    schedulerCpuMsPerTi: tis > 0 ? (b.schedulerCpuMs - a.schedulerCpuMs) / tis : null,
    workersCpuMsPerTi: tis > 0 ? (b.workers.cpuMs - a.workers.cpuMs) / tis : null,
    schedulerCpuPct: (100 * (b.schedulerCpuMs - a.schedulerCpuMs)) / dt,
    workersCpuPct: (100 * (b.workers.cpuMs - a.workers.cpuMs)) / dt,
    driverCpuPct: (100 * (b.driverCpuMs - a.driverCpuMs)) / dt,
    serverCpuPct: a.server && b.server ? (100 * (b.server.cpuMs - a.server.cpuMs)) / dt : null,
    serverCpuMsPerTi: a.server && b.server && tis > 0 ? (b.server.cpuMs - a.server.cpuMs) / tis : null,
    machineBusyPct: mean(inside.map((s) => s.machineBusyPct)),
    load1: mean(inside.map((s) => s.load1)),
  };
}

/** Per-sample series over progress for the charts; throughput smoothed over 5 samples. */
function seriesFrom(samples) {
  const rate = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].tMs - samples[i - 1].tMs) / 1000;
    rate.push([samples[i].finishedTis, dt > 0 ? (samples[i].finishedTis - samples[i - 1].finishedTis) / dt : null]);
  }
  const smooth = rate.map(([x], i) => [x, mean(rate.slice(Math.max(0, i - 2), i + 3).map(([, y]) => y))]);
  return {
    schedulerRss: samples.map((s) => [s.finishedTis, s.schedulerRssBytes]),
    workersRss: samples.map((s) => [s.finishedTis, s.workers.rssBytes]),
    fds: samples.map((s) => [s.finishedTis, s.fds]),
    dbBytes: samples.filter((s) => s.db).map((s) => [s.finishedTis, s.db.bytes]),
    tiPerSec: smooth,
  };
}

function fmtK(n) {
  return Math.round(n).toLocaleString('en-US');
}
