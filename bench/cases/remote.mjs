/**
 * Case 10, remote workers: the bullmq executor (tries as BullMQ jobs on Redis, run by
 * `kiln worker` hosts) against the local executor, on the DAG of case 1's 40 x 40 scenario
 * (40 concurrent runs of the 40-task `wide` DAG, noop tasks), end to end with SQLite.
 *
 * A redis-server of the case's own (bench/lib/remote-rig.mjs: a free port, a temporary
 * folder, no persistence; never the shared 6379), and per isolation (thread, then process):
 *   - 2 `kiln worker` processes (dist/ CLI, `--slots parallelism/2 --isolation <it>`,
 *     KILN_REDIS_URL, the DAG folder as KILN_DAGS_FOLDER, no database URL), live in
 *     `kiln workers list` before the scheduler side opens;
 *   - the scheduler side: a warm kiln context with executor 'bullmq' (redisUrl, the same
 *     DAG folder, defaultIsolation <it>, so every try asks the hosts for that isolation) in
 *     a mode server of its own (bench/lib/mode-server.mjs), kiln's default parallelism;
 *   - the local executor of that isolation at the same parallelism, in a mode server too;
 *   - remote and local interleaved per repetition (remote, local, local, remote, ...).
 * TI/s is end to end (run creation to the last run's end). Per-try latency is the time from
 * executor.submit() to the `finished` event reaching the engine (bench/lib/kiln.mjs
 * instrument()), pooled over the repetitions; added latency = remote p50 - local p50 (same
 * isolation). CPU per TI: every process of each side (scheduler, hosts with their pools,
 * Redis; the local mode server with its pool), from /proc, over the measured repetitions.
 *
 * Beside it, the unloaded round trip: one run of a 20-task chain (one try in flight at a
 * time), remote and local interleaved, so the latency without queueing is seen too.
 *
 * Without redis-server on the machine the case is skipped with a note (the result says so).
 * `--options '{"parallelism":32,"slots":16}'` runs other sizes (slots: per host).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { startModeServer } from '../lib/mode-client.mjs';
import { cpuMsOfTree, hasRedisServer, NO_REDIS_SERVER, startOwnRedis, startWorkerHosts } from '../lib/remote-rig.mjs';
import { fmt, fmtPercent, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { percentile, ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'remote';
export const title = 'Remote workers: the bullmq executor through Redis with 2 `kiln worker` hosts against the local executor (case 10)';
export const ISOLATIONS = ['thread', 'process'];
export const HOSTS = 2;

export async function run({ scale, log, tmpDir, options = {} }) {
  const runs = pick(scale, { smoke: 2, quick: 40, full: 40 });
  const tasks = pick(scale, { smoke: 5, quick: 40, full: 40 });
  const reps = pick(scale, { smoke: 1, quick: 1, full: 5 });
  const chainTasks = pick(scale, { smoke: 5, quick: 20, full: 20 });
  const chainReps = pick(scale, { smoke: 1, quick: 3, full: 10 });
  const isolations = options.isolations ?? ISOLATIONS;
  const params = { scale, runs, tasks, reps, chainTasks, chainReps, hosts: HOSTS, isolations };
  if (!hasRedisServer()) {
    const skipped = `${NO_REDIS_SERVER}: the remote case was not measured`;
    log(skipped);
    return { params, skipped };
  }
  const dagsFolder = join(tmpDir, 'dags');
  mkdirSync(dagsFolder, { recursive: true });
  const wide = writeDag(dagsFolder, { dagId: `bench_wide${tasks}_noop`, shape: 'wide', tasks, work: 'noop' });
  const chain = writeDag(dagsFolder, { dagId: `bench_chain${chainTasks}_noop`, shape: 'chain', tasks: chainTasks, work: 'noop' });

  const byIsolation = {};
  for (const isolation of isolations) {
    // A fresh Redis per isolation: the second side does not start with the first one's jobs.
    const redis = await startOwnRedis(join(tmpDir, `redis-${isolation}`));
    let local = null;
    let remote = null;
    let hosts = null;
    try {
      local = startModeServer(isolation);
      const localInfo = await local.call('open', { home: join(tmpDir, `local-${isolation}`), config: { executor: isolation, ...(options.parallelism ? { parallelism: options.parallelism } : {}) } });
      const parallelism = localInfo.parallelism;
      const slots = options.slots ?? Math.max(1, Math.floor(parallelism / HOSTS));
      hosts = await startWorkerHosts({ redisUrl: redis.url, dagsFolder, dir: join(tmpDir, `hosts-${isolation}`), count: HOSTS, slots, isolation, log });
      remote = startModeServer(`bullmq-${isolation}`);
      await remote.call('open', { home: join(tmpDir, `remote-${isolation}`), config: { executor: 'bullmq', redisUrl: redis.url, dagsFolder, defaultIsolation: isolation, parallelism } });
      for (const server of [local, remote]) for (const file of [wide, chain]) await server.call('load', { file });
      log(`${isolation}: redis ${redis.url}, ${HOSTS} hosts x ${slots} slots, scheduler parallelism ${parallelism} (local and remote)`);

      // Warm-up: every pool worker on every host imports the DAG modules, the JIT sees the paths.
      for (const [side, server] of [['remote', remote], ['local', local]]) {
        for (const [file, n] of [[wide, Math.min(runs, 8)], [chain, 1]]) {
          const r = await server.call('run', { file, runs: n });
          if (r.isolations.length !== 1 || r.isolations[0] !== isolation) throw new Error(`${side} ${isolation}: tasks ran with isolation ${r.isolations.join(', ')}`);
        }
      }
      log(`${isolation}: warm-up done`);

      // CPU of every process of each side, over its measured repetitions.
      const remotePids = () => [remote.pid, ...hosts.hosts.map((h) => h.pid), redis.pid];
      const measured = (server, pids, file, n) => async () => {
        const before = pids().map(cpuMsOfTree);
        const r = await server.call('run', { file, runs: n });
        const cpu = pids().map((pid, i) => cpuMsOfTree(pid) - before[i]);
        return { ...r, cpuTreeMs: cpu };
      };
      const out = await interleave(reps, {
        remote: { run: measured(remote, remotePids, wide, runs) },
        local: { run: measured(local, () => [local.pid], wide, runs) },
      }, { onRound: (round) => log(`${isolation} ${runs}x${tasks}: round ${round + 1}/${reps}`) });
      const idle = await interleave(chainReps, {
        remote: { run: measured(remote, remotePids, chain, 1) },
        local: { run: measured(local, () => [local.pid], chain, 1) },
      });

      const side = (list, cpuParts) => {
        const latencies = list.flatMap((r) => r.overheadMs);
        const tis = list.reduce((s, r) => s + r.tis, 0);
        const cpu = cpuParts.map((_, i) => list.reduce((s, r) => s + r.cpuTreeMs[i], 0) / tis);
        return {
          reps: list.length,
          tis: list[0]?.tis ?? 0,
          wallMs: summary(list.map((r) => r.wallMs)),
          tiPerSec: summary(list.map((r) => r.tiPerSec)),
          latencyMs: latencySummary(latencies),
          cpuMsPerTi: { total: cpu.reduce((a, b) => a + b, 0), ...Object.fromEntries(cpuParts.map((p, i) => [p, cpu[i]])), ...(cpuParts.length > 1 ? { hosts: cpu.slice(1, -1).reduce((a, b) => a + b, 0) } : {}) },
        };
      };
      const remoteParts = ['scheduler', ...hosts.hosts.map((h) => h.name), 'redis'];
      const result = {
        parallelism,
        slotsPerHost: slots,
        remote: side(out.remote, remoteParts),
        local: side(out.local, ['scheduler']),
        idle: { remote: side(idle.remote, remoteParts), local: side(idle.local, ['scheduler']) },
      };
      result.ratio = ratio(result.remote.tiPerSec.median, result.local.tiPerSec.median);
      result.addedLatencyMs = { p50: result.remote.latencyMs.p50 - result.local.latencyMs.p50, p95: result.remote.latencyMs.p95 - result.local.latencyMs.p95 };
      result.idle.addedLatencyMs = { p50: result.idle.remote.latencyMs.p50 - result.idle.local.latencyMs.p50, p95: result.idle.remote.latencyMs.p95 - result.idle.local.latencyMs.p95 };
      byIsolation[isolation] = result;
      log(`${isolation}: remote ${fmt(result.remote.tiPerSec.median)} TI/s, local ${fmt(result.local.tiPerSec.median)} TI/s (${fmtPercent(result.ratio)}); latency p50 ${fmt(result.remote.latencyMs.p50)} / ${fmt(result.local.latencyMs.p50)} ms (added ${fmt(result.addedLatencyMs.p50)} ms); idle chain added ${fmt(result.idle.addedLatencyMs.p50)} ms`);
    } finally {
      await remote?.close();
      await hosts?.stop();
      await local?.close();
      await redis.stop();
    }
  }
  return { params: { ...params, parallelism: byIsolation[isolations[0]]?.parallelism, slotsPerHost: byIsolation[isolations[0]]?.slotsPerHost }, byIsolation };
}

function latencySummary(values) {
  return { p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99), n: values.length };
}

export function render(r, doc) {
  const p = r.params;
  if (r.skipped) return { markdown: `**Not measured.** ${r.skipped}.`, charts: [] };
  const md = [];
  md.push(`${p.runs} concurrent runs of a ${p.tasks}-task noop DAG (case 1's \`wide\` shape), ${fmt(p.runs * p.tasks)} task instances per repetition, end to end with SQLite. **Remote**: executor \`bullmq\` on a redis-server of the case's own (127.0.0.1, no persistence), ${p.hosts} \`kiln worker\` processes on this machine with ${p.slotsPerHost} slots each and the isolation of the row (the scheduler's \`defaultIsolation\` the same, so every try runs in it). **Local**: the thread or process executor. Both sides at the scheduler parallelism ${p.parallelism}, each in a warm process of its own, interleaved, ${p.reps} repetition${p.reps > 1 ? 's' : ''} each. Latency per try: \`executor.submit()\` to the \`finished\` event reaching the run engine, pooled over the repetitions; **added** = remote minus local, same isolation. CPU per TI: all processes of the side (scheduler; hosts with their pools; Redis), from /proc.`);
  md.push('');
  const rows = [];
  for (const iso of p.isolations) {
    const x = r.byIsolation[iso];
    if (!x) continue;
    for (const [name, s] of [['remote', x.remote], ['local', x.local]]) {
      const cpu = name === 'remote' ? `${fmt(s.cpuMsPerTi.total)} (scheduler ${fmt(s.cpuMsPerTi.scheduler)}, hosts ${fmt(s.cpuMsPerTi.hosts)}, Redis ${fmt(s.cpuMsPerTi.redis)})` : fmt(s.cpuMsPerTi.total);
      rows.push([iso, name, s.reps, fmtSummary(s.wallMs, 'ms'), fmtSummary(s.tiPerSec), name === 'remote' ? fmtPercent(x.ratio) : '100%', `${fmt(s.latencyMs.p50)} / ${fmt(s.latencyMs.p95)} / ${fmt(s.latencyMs.p99)}`, name === 'remote' ? `${fmt(x.addedLatencyMs.p50)} / ${fmt(x.addedLatencyMs.p95)}` : '-', cpu]);
    }
  }
  md.push(table(['isolation', 'side', 'reps', 'wall', 'TI/s', 'of local', 'latency per try p50 / p95 / p99 (ms)', 'added p50 / p95 (ms)', 'CPU per TI, all processes (ms)'], rows));
  md.push('');
  const little = p.isolations.filter((iso) => r.byIsolation[iso]).map((iso) => {
    const x = r.byIsolation[iso];
    return `${iso} ${p.parallelism} / ${fmt(x.remote.tiPerSec.median)} TI/s = ${fmt((p.parallelism / x.remote.tiPerSec.median) * 1000)} ms (measured p50 ${fmt(x.remote.latencyMs.p50)} ms)`;
  });
  md.push(`With ${p.runs} runs ready, each side keeps its ${p.parallelism} tries in flight most of the time, so a try's latency is about tries in flight / throughput (Little's law; the mean, over the whole wall time): remote ${little.join('; ')}. So at ${p.runs} x ${p.tasks} the latency target and the throughput target are one: the added latency is mostly tries waiting their turn on a saturated CPU. The round trip itself is below.`);
  md.push('');
  md.push(`Unloaded round trip: one run of a ${p.chainTasks}-task noop chain (one try in flight at a time), ${p.chainReps} repetition${p.chainReps > 1 ? 's' : ''} a side, interleaved:`);
  md.push('');
  const idleRows = [];
  for (const iso of p.isolations) {
    const x = r.byIsolation[iso];
    if (!x) continue;
    idleRows.push([iso, `${fmt(x.idle.remote.latencyMs.p50)} / ${fmt(x.idle.remote.latencyMs.p95)}`, `${fmt(x.idle.local.latencyMs.p50)} / ${fmt(x.idle.local.latencyMs.p95)}`, `${fmt(x.idle.addedLatencyMs.p50)} / ${fmt(x.idle.addedLatencyMs.p95)}`, fmt(x.idle.remote.cpuMsPerTi.total), fmt(x.idle.local.cpuMsPerTi.total)]);
  }
  md.push(table(['isolation', 'remote latency p50 / p95 (ms)', 'local p50 / p95 (ms)', 'added p50 / p95 (ms)', 'remote CPU per TI (ms)', 'local CPU per TI (ms)'], idleRows));
  md.push('');
  md.push(`A remote try is an \`add\` of a BullMQ job (a Lua script in Redis), the host's fetch of it, the host's local supervisor running it, the job moved to completed with its result, a hint on the scheduler's event stream (XADD) and the scheduler's XREAD of it; \`started\` travels the same stream. The hosts, Redis and the scheduler share this machine's ${doc?.machine?.cores ?? ''} cores with each other (and with whatever else runs on it), so the remote side's CPU per TI bounds its throughput here.`);
  const bars = [];
  for (const iso of p.isolations) {
    const x = r.byIsolation[iso];
    if (!x) continue;
    bars.push({ label: `remote (bullmq), ${iso}`, value: x.remote.tiPerSec.median, color: colorFor('bullmq') });
    bars.push({ label: `local, ${iso}`, value: x.local.tiPerSec.median, color: colorFor(iso) });
  }
  const charts = bars.length === 0 ? [] : [{
    name: 'remote-throughput',
    alt: 'Remote workers against the local executor, task instances per second',
    svg: barChart({ title: `${p.runs} runs x ${p.tasks} noop tasks: ${p.hosts} kiln worker hosts through Redis vs local`, unit: 'TI/s', bars, target: p.runs === 40 && p.tasks === 40 ? { value: 2000, label: '2,000 TI/s target (remote)' } : null }),
  }];
  return { markdown: md.join('\n'), charts };
}
