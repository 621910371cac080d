/**
 * Case 3, scheduler memory per loop (the seed's joinedload fix): 20 running runs x 100
 * tasks (2,000 task instances) and x 1,000 tasks (20,000), bytes allocated per loop by
 * kiln's loop against a deliberately naive loop that loads every task instance of every
 * running run (bench/naive-loop.mjs). Interleaved loop by loop, SQLite.
 */
import { join } from 'node:path';
import { createStore } from '../../dist/src/store/index.js';
import { heapDelta, sampledAllocation } from '../lib/alloc.mjs';
import { kilnLoop } from '../lib/kiln-loop.mjs';
import { fmt, fmtBytes, fmtRatio, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { median, ratio } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';
import { naiveTick } from '../naive-loop.mjs';

export const id = 'scheduler-memory';
export const title = 'Scheduler memory per loop: kiln against a naive load-everything loop (case 3)';
// A young generation big enough that one loop (even the naive one at 20,000 TIs) runs without a GC.
export const nodeFlags = ['--expose-gc', '--max-semi-space-size=128', '--min-semi-space-size=128'];

const RUNS = 20;
const SCHEDULER = 'bench-scheduler';
const LOOP_OPTIONS = { schedulerId: SCHEDULER, zombieTimeoutMs: 60_000, queuedTimeoutMs: 600_000 };

export async function run({ scale, log, tmpDir }) {
  const loops = pick(scale, { smoke: 3, quick: 6, full: 40 });
  const sampledLoops = pick(scale, { smoke: 2, quick: 5, full: 30 });
  const sizes = [100, 1000];
  const out = { params: { runs: RUNS, sizes, loops, sampledLoops }, sizes: {} };
  const loop = await kilnLoop();
  out.kilnLoop = loop.description;
  for (const tasks of sizes) {
    const store = await createStore(`sqlite:${join(tmpDir, `memory-${tasks}.db`)}`);
    try {
      await store.migrate();
      await seedRunningRuns(store, tasks);
      const opts = () => ({ ...LOOP_OPTIONS, now: Date.now() });
      const kiln = await loop.open(store, LOOP_OPTIONS);
      const variants = { kiln: () => kiln.tick(opts()), naive: () => naiveTick(store, opts()) };
      log(`${tasks} tasks: kiln's first tick (adoption of ${kiln.heldRuns} runs) allocated ${fmtBytes(kiln.adoption.bytes)}`);
      // Warm-up: JIT, statement caches, and the first-loop work of kiln's loop (claiming).
      for (let i = 0; i < 5; i++) for (const fn of Object.values(variants)) await fn();
      const samples = { kiln: [], naive: [] };
      const ms = { kiln: [], naive: [] };
      let discarded = 0;
      for (let i = 0; i < loops; i++) {
        for (const name of i % 2 ? ['naive', 'kiln'] : ['kiln', 'naive']) {
          const r = await heapDelta(variants[name]);
          ms[name].push(r.ms);
          if (r.gcDuring) discarded++;
          else samples[name].push(r.bytes);
        }
      }
      const sampled = {};
      for (const name of ['kiln', 'naive']) sampled[name] = await sampledAllocation(variants[name], sampledLoops);
      // Where kiln's allocation goes: each query of its tick alone (sampling profiler).
      const parts = {};
      for (const [name, fn] of Object.entries(kiln.parts?.(opts) ?? {})) {
        for (let i = 0; i < 3; i++) await fn();
        parts[name] = await sampledAllocation(fn, sampledLoops);
      }
      const tisLoaded = (await naiveTick(store, opts()), tasks * RUNS);
      out.sizes[tasks] = {
        tis: tasks * RUNS,
        naiveTisLoaded: tisLoaded,
        kiln: { bytesPerLoop: sampled.kiln, heapDeltaBytesPerLoop: median(samples.kiln), msPerLoop: median(ms.kiln), n: samples.kiln.length },
        naive: { bytesPerLoop: sampled.naive, heapDeltaBytesPerLoop: median(samples.naive), msPerLoop: median(ms.naive), n: samples.naive.length },
        discardedForGc: discarded,
        kilnParts: parts,
        kilnAdoptionBytes: kiln.adoption.gcDuring ? null : kiln.adoption.bytes,
        kilnHeldRuns: kiln.heldRuns,
      };
      await kiln.close();
      log(`${tasks} tasks x ${RUNS} runs: kiln ${fmtBytes(sampled.kiln)}/loop (heap delta ${fmtBytes(median(samples.kiln))}), naive ${fmtBytes(sampled.naive)}/loop (heap delta ${fmtBytes(median(samples.naive))}), ${discarded} heap-delta samples discarded (GC ran)`);
    } finally {
      await store.close();
    }
  }
  const small = out.sizes[100];
  const large = out.sizes[1000];
  out.kiln = { small: small.kiln.bytesPerLoop, large: large.kiln.bytesPerLoop, growth: ratio(large.kiln.bytesPerLoop, small.kiln.bytesPerLoop) };
  out.naive = { small: small.naive.bytesPerLoop, large: large.naive.bytesPerLoop, growth: ratio(large.naive.bytesPerLoop, small.naive.bytesPerLoop) };
  return out;
}

/**
 * 20 running runs of one DAG with `tasks` tasks, claimed by this scheduler, in the state a
 * busy run is in: 30% finished, 8 running (heartbeat just now), 4 queued, the rest waiting.
 */
async function seedRunningRuns(store, tasks) {
  const dagId = `bench_memory_${tasks}`;
  const now = Date.now();
  const taskDefs = Array.from({ length: tasks }, (_, i) => ({
    taskId: `t${i + 1}`, upstream: [], triggerRule: 'all_success', retries: 0, retryDelayMs: 300_000, retryExponentialBackoff: false,
    maxRetryDelayMs: null, timeoutMs: null, heartbeatTimeoutMs: null, isolation: null, pool: 'default_pool', poolSlots: 1, priorityWeight: 1, env: [],
  }));
  await store.upsertDag({ dagId, file: `/bench/${dagId}.ts`, version: 'v1', serialized: { dagId, schedule: null, startDate: null, catchup: false, maxActiveRuns: 32, maxActiveTasks: 16, params: {}, tags: [], description: null, tasks: taskDefs } });
  for (let r = 0; r < RUNS; r++) {
    const runId = `run_${r}`;
    const tis = taskDefs.map((t, i) => {
      const done = i < tasks * 0.3;
      const running = !done && i < tasks * 0.3 + 8;
      const queued = !done && !running && i < tasks * 0.3 + 12;
      return {
        dagId, runId, taskId: t.taskId, state: done ? 'success' : running ? 'running' : queued ? 'queued' : 'none', tryNumber: done || running || queued ? 1 : 0, maxTries: 1,
        pool: 'default_pool', poolSlots: 1, priorityWeight: 1, isolation: done || running || queued ? 'thread' : null,
        queuedAt: done || running || queued ? now : null, startedAt: done || running ? now : null, endedAt: done ? now : null, durationMs: done ? 1 : null,
        pid: running ? 4242 : null, exitCode: done ? 0 : null, signal: null, error: null, peakRssBytes: null, cpuMs: null,
        lastHeartbeatAt: running ? now : null, queuedBy: done || running || queued ? SCHEDULER : null, nextRetryAt: null,
      };
    });
    await store.createRun({ dagId, runId, runType: 'manual', logicalDate: now + r, dataIntervalStart: now + r, dataIntervalEnd: now + r, state: 'running', params: {}, dagVersion: 'v1', queuedAt: now, startedAt: now, endedAt: null, claimedBy: SCHEDULER }, tis);
  }
}

function partsTable(r) {
  const names = Object.keys(r.sizes[r.params.sizes[0]].kilnParts ?? {});
  if (names.length === 0) return '';
  return ['Where kiln\'s loop allocates (each step alone, sampling profiler):', '', table(['step', ...r.params.sizes.map((t) => `${fmt(t * r.params.runs)} TIs`)], names.map((n) => [`\`${n}\``, ...r.params.sizes.map((t) => fmtBytes(r.sizes[t].kilnParts[n]))]))].join('\n');
}

export function render(r) {
  const rows = [];
  for (const tasks of r.params.sizes) {
    const s = r.sizes[tasks];
    rows.push([`${r.params.runs} runs x ${fmt(tasks)} tasks (${fmt(s.tis)} TIs)`, 'kiln', fmtBytes(s.kiln.bytesPerLoop), fmtBytes(s.kiln.heapDeltaBytesPerLoop), fmt(s.kiln.msPerLoop), 'only queued/running TIs']);
    rows.push(['', 'naive (load every TI)', fmtBytes(s.naive.bytesPerLoop), fmtBytes(s.naive.heapDeltaBytesPerLoop), fmt(s.naive.msPerLoop), fmt(s.naiveTisLoaded)]);
    if (s.kilnAdoptionBytes !== undefined) rows.push(['', `kiln, its first tick only (adopts ${s.kilnHeldRuns} runs: reads their TIs once, then holds them in memory)`, '-', fmtBytes(s.kilnAdoptionBytes), '-', fmt(s.tis)]);
  }
  const md = [
    `kiln's loop: ${r.kilnLoop}`,
    '',
    `The naive loop (\`bench/naive-loop.mjs\`, benchmark only): \`listRuns(running)\`, then \`getTaskInstances\` for every run, then the same decisions by scanning every row in memory, the equivalent of Airflow's \`joinedload(DagRun.task_instances)\`. Each run is 30% finished, 8 task instances running with fresh heartbeats, 4 queued, the rest waiting. Allocation per loop: V8's sampling heap profiler (\`HeapProfiler.startSampling\`, 512-byte interval, objects later collected by minor and major GCs included) over ${r.params.sampledLoops} loops of each; cross-checked by heap deltas: heap used after one loop minus after a forced GC, median of ${r.params.loops} loops of each, interleaved, in a process whose young generation (128 MiB semi-spaces) lets a loop run without a GC (${r.params.sizes.map((t) => r.sizes[t].discardedForGc).reduce((a, b) => a + b, 0)} samples discarded because one ran anyway). The two agree within ~10% on plain JavaScript allocation; here the heap delta reads higher, by a roughly constant amount per loop kind (~0.1 MiB for kiln's tick, ~5-6 MiB for the naive loop; it counts everything the heap grew by, not only sampled objects, and the cause of the difference was not pinned down), so the targets use the profiler's figure; the conclusions are the same with either.`,
    '',
    table(['running task instances', 'loop', 'allocated per loop (sampling profiler)', 'heap delta per loop', 'ms per loop', 'TIs loaded per loop'], rows),
    '',
    `Growth from 2,000 to 20,000 task instances: kiln ${fmtRatio(r.kiln.growth)}, naive ${fmtRatio(r.naive.growth)}. At 2,000 TIs kiln allocates ${fmtRatio(ratio(r.naive.small, r.kiln.small))} less than the naive loop; at 20,000, ${fmtRatio(ratio(r.naive.large, r.kiln.large))} less.`,
    '',
    partsTable(r),
    '',
    'The seed (Airflow, 20 runs x 100 tasks, tracemalloc): 6.58 MB per loop with joinedload of every TI, 0.24 MB with a bulk UPDATE (-96%).',
  ].join('\n');
  const bars = [];
  for (const tasks of r.params.sizes) {
    bars.push({ label: `kiln, ${fmt(r.sizes[tasks].tis)} TIs`, value: r.sizes[tasks].kiln.bytesPerLoop / 1024, color: colorFor('kiln'), text: fmtBytes(r.sizes[tasks].kiln.bytesPerLoop) });
    bars.push({ label: `naive, ${fmt(r.sizes[tasks].tis)} TIs`, value: r.sizes[tasks].naive.bytesPerLoop / 1024, color: colorFor('naive'), text: fmtBytes(r.sizes[tasks].naive.bytesPerLoop) });
  }
  return { markdown: md, charts: [{ name: 'scheduler-memory', alt: 'Bytes allocated per scheduler loop', svg: barChart({ title: 'Allocated per scheduler loop', unit: 'KiB', log: true, bars }) }] };
}
