#!/usr/bin/env node
/**
 * Executor round trip and throughput for a noop task, against the raw pools kiln builds on.
 *
 *   node bench/executor-roundtrip.mjs [--rounds 5] [--latency 2000] [--throughput 20000] [--spawn 10] [--json]
 *
 * Systems, measured in ONE run and interleaved round by round (so drift in machine load hits
 * all of them alike):
 *   raw-piscina    Piscina, maxThreads = cores, noop handler
 *   raw-tinypool   Tinypool child_process runtime, maxThreads = cores, noop handler
 *   kiln-thread    kiln's executor, thread isolation, a noop task of a DAG file
 *   kiln-process   kiln's executor, process isolation
 *   kiln-spawn     kiln's executor, spawn isolation (a few tasks only: ~100 ms each)
 *
 * Round trip: one task at a time, submit -> finished (kiln) or run() -> resolved (raw).
 * Throughput: raw pools get 4 x cores tasks in flight (their queue keeps every thread busy);
 * kiln gets `parallelism` = 2 x cores in flight, refilled from the 'finished' event, which is
 * how the scheduler drives it (kiln has no queue: submit() respects freeSlots()).
 * The kiln tasks run the whole runner path: DAG module lookup, TaskContext, stdout capture,
 * serializability check, usage figures, stdout/stderr capture into the try's log file.
 *
 * Needs `npm run build` first (kiln's runners start from dist/).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem, tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Piscina from 'piscina';
import Tinypool from 'tinypool';
import { createLocalExecutor } from '../dist/src/executor/local-executor.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    latency: { type: 'string', default: '2000' },
    throughput: { type: 'string', default: '20000' },
    spawn: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
const LATENCY_N = Number(args.latency);
const THROUGHPUT_N = Number(args.throughput);
const SPAWN_N = Number(args.spawn);
const cores = availableParallelism();

const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-exec-'));
const noopHandler = join(dir, 'noop-handler.mjs');
writeFileSync(noopHandler, 'export default function noop(task) { return task.key; }\n');
const dagFile = join(dir, 'bench.mjs');
writeFileSync(dagFile, "import { dag } from 'kiln';\nexport default dag({ id: 'bench' }, (d) => { d.task('noop', () => undefined); });\n");
mkdirSync(join(dir, 'logs'));

// ---- systems: each offers run(i) -> Promise<void> ---------------------------------------------

let seq = 0;
const workFor = (isolation) => ({
  key: `bench/r/noop/${++seq}`,
  dagId: 'bench',
  runId: 'r',
  taskId: 'noop',
  tryNumber: 1,
  maxTries: 1,
  dagFile,
  dagVersion: 'v1',
  params: {},
  runType: 'manual',
  logicalDate: 0,
  dataIntervalStart: 0,
  dataIntervalEnd: 0,
  prevDataIntervalStartSuccess: null,
  prevDataIntervalEndSuccess: null,
  isolation,
  timeoutMs: null,
  heartbeatTimeoutMs: null,
  env: [],
  // A per-try log file, as the scheduler always gives one: stdout capture is armed; a noop
  // prints nothing, so no file is written.
  logFile: join(dir, 'logs', `${seq}.log`),
});

function kiln(isolation, parallelism) {
  const waiting = new Map();
  const failures = [];
  const executor = createLocalExecutor({
    parallelism,
    defaultIsolation: isolation,
    logDir: join(dir, 'logs'),
    taskApi: { xcom: async () => undefined },
    onEvent: (e) => {
      if (e.type !== 'finished') return;
      if (e.outcome !== 'success') failures.push(e);
      waiting.get(e.key)?.();
      waiting.delete(e.key);
    },
  });
  return {
    name: `kiln-${isolation}`,
    inFlight: parallelism,
    start: () => executor.start(),
    run: () => new Promise((resolve) => {
      const work = workFor(isolation);
      waiting.set(work.key, resolve);
      executor.submit(work);
    }),
    stop: () => executor.stop(),
    failures,
  };
}

function raw(name, pool) {
  return {
    name,
    inFlight: 4 * cores,
    start: async () => {
      await Promise.all(Array.from({ length: cores * 2 }, () => pool.run({ key: 'warm' })));
    },
    run: () => pool.run({ key: 'x' }),
    stop: () => pool.destroy(),
    failures: [],
  };
}

const systems = [
  raw('raw-piscina', new Piscina({ filename: noopHandler, minThreads: cores, maxThreads: cores })),
  raw('raw-tinypool', new Tinypool({ filename: noopHandler, runtime: 'child_process', minThreads: cores, maxThreads: cores })),
  kiln('thread', 2 * cores),
  kiln('process', 2 * cores),
];
const spawnSystem = kiln('spawn', 2 * cores);

// ---- measurement ---------------------------------------------------------------------------

async function roundTrips(system, n, into) {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await system.run();
    into.push(performance.now() - t0);
  }
}

async function throughput(system, n) {
  let started = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: system.inFlight }, async () => {
    while (started < n) {
      started++;
      await system.run();
    }
  }));
  return { tasks: n, ms: performance.now() - t0 };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

const stats = new Map(systems.map((s) => [s.name, { latencies: [], tasks: 0, ms: 0 }]));
for (const s of [...systems, spawnSystem]) await s.start();
// Warm-up: JIT, module caches, DAG import in every worker.
for (const s of systems) await throughput(s, 2000);

for (let round = 0; round < ROUNDS; round++) {
  for (const s of systems) await roundTrips(s, Math.ceil(LATENCY_N / ROUNDS), stats.get(s.name).latencies);
  for (const s of systems) {
    const r = await throughput(s, Math.ceil(THROUGHPUT_N / ROUNDS));
    stats.get(s.name).tasks += r.tasks;
    stats.get(s.name).ms += r.ms;
  }
}
const spawnLatencies = [];
await roundTrips(spawnSystem, SPAWN_N, spawnLatencies);
const spawnThroughput = await throughput(spawnSystem, SPAWN_N * 2);

for (const s of [...systems, spawnSystem]) await s.stop();
rmSync(dir, { recursive: true, force: true });

// ---- report ----------------------------------------------------------------------------------

const rows = systems.map((s) => {
  const st = stats.get(s.name);
  const sorted = st.latencies.sort((a, b) => a - b);
  return { system: s.name, inFlight: s.inFlight, medianMs: pct(sorted, 0.5), p99Ms: pct(sorted, 0.99), tasksPerSec: (st.tasks / st.ms) * 1000, failures: s.failures.length };
});
{
  const sorted = spawnLatencies.sort((a, b) => a - b);
  rows.push({ system: 'kiln-spawn', inFlight: spawnSystem.inFlight, medianMs: pct(sorted, 0.5), p99Ms: pct(sorted, 0.99), tasksPerSec: (spawnThroughput.tasks / spawnThroughput.ms) * 1000, failures: spawnSystem.failures.length });
}
const byName = Object.fromEntries(rows.map((r) => [r.system, r]));
const ratios = {
  threadVsPiscina: { roundTrip: byName['kiln-thread'].medianMs / byName['raw-piscina'].medianMs, throughput: byName['kiln-thread'].tasksPerSec / byName['raw-piscina'].tasksPerSec },
  processVsTinypool: { roundTrip: byName['kiln-process'].medianMs / byName['raw-tinypool'].medianMs, throughput: byName['kiln-process'].tasksPerSec / byName['raw-tinypool'].tasksPerSec },
};
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores,
  memoryGb: +(totalmem() / 2 ** 30).toFixed(1),
  freeMemoryGb: +(freemem() / 2 ** 30).toFixed(1),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
};
const settings = { rounds: ROUNDS, latencyTasks: LATENCY_N, throughputTasks: THROUGHPUT_N, spawnTasks: SPAWN_N };

if (args.json) {
  console.log(JSON.stringify({ machine, settings, rows, ratios }, null, 2));
} else {
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.node} (${machine.platform})`);
  console.log(`settings: ${JSON.stringify(settings)}\n`);
  console.log('system          in-flight  median ms   p99 ms   tasks/s   failures');
  for (const r of rows) {
    console.log(`${r.system.padEnd(16)}${String(r.inFlight).padStart(9)}${r.medianMs.toFixed(3).padStart(11)}${r.p99Ms.toFixed(3).padStart(9)}${Math.round(r.tasksPerSec).toString().padStart(10)}${String(r.failures).padStart(11)}`);
  }
  const f = (x) => x.toFixed(2);
  console.log(`\nkiln-thread  / raw-piscina : round trip x${f(ratios.threadVsPiscina.roundTrip)}, throughput ${Math.round(ratios.threadVsPiscina.throughput * 100)}%`);
  console.log(`kiln-process / raw-tinypool: round trip x${f(ratios.processVsTinypool.roundTrip)}, throughput ${Math.round(ratios.processVsTinypool.throughput * 100)}%`);
}
