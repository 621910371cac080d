/**
 * Case 5, the physical limit: what the pool libraries and the OS give with kiln taken out.
 * piscina (worker threads) and tinypool (child_process runtime) run a noop task file, all
 * tasks in flight at once (throughput) and one at a time (round trip); `node -e 0` is
 * spawned one at a time (start-up time) and several at once (spawns per second).
 * Every kiln figure in the report is also shown as a fraction of these.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { Piscina } from 'piscina';
import Tinypool from 'tinypool';
import { interleave } from '../lib/interleave.mjs';
import { fmt, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { median, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'limits';
export const title = 'The physical limit: raw pools and process spawn (case 5)';

const NOOP = new URL('../fixtures/noop-worker.mjs', import.meta.url).href;
/** Spawns in flight at once in the parallel spawn test: kiln's default parallelism on this machine. */
export const SPAWN_CONCURRENCY = Math.max(4, cpus().length * 4);
export const POOL_SIZE = cpus().length;

export async function run({ scale, log }) {
  const tasks = pick(scale, { smoke: 2_000, quick: 10_000, full: 50_000 });
  const roundTrips = pick(scale, { smoke: 200, quick: 1_000, full: 5_000 });
  const reps = pick(scale, { smoke: 1, quick: 2, full: 5 });
  const spawnsSeq = pick(scale, { smoke: 3, quick: 10, full: 20 });
  const spawnsPar = pick(scale, { smoke: 8, quick: 16, full: 64 });

  const piscina = new Piscina({ filename: NOOP, minThreads: POOL_SIZE, maxThreads: POOL_SIZE });
  const tinypool = new Tinypool({ filename: NOOP, runtime: 'child_process', minThreads: POOL_SIZE, maxThreads: POOL_SIZE });
  try {
    // Warm-up: start every worker and let the JIT see the paths once.
    await throughput(piscina, Math.min(tasks, 5_000));
    await throughput(tinypool, Math.min(tasks, 2_000));
    await spawnSequential(1);

    const out = await interleave(reps, {
      piscina: { run: async () => ({ tasksPerSec: await throughput(piscina, tasks), roundTripMs: await roundTrip(piscina, roundTrips) }) },
      tinypool: { run: async () => ({ tasksPerSec: await throughput(tinypool, tasks), roundTripMs: await roundTrip(tinypool, roundTrips) }) },
      spawn: { run: async () => ({ startMs: await spawnSequential(spawnsSeq), spawnsPerSec: await spawnParallel(spawnsPar, SPAWN_CONCURRENCY) }) },
    }, { onRound: (r) => log(`limits: round ${r + 1}/${reps} done`) });

    log('limits: kiln executor alone (bench/executor-roundtrip.mjs)');
    const executorAlone = await executorRoundtrip(pick(scale, {
      smoke: ['--rounds', '1', '--latency', '100', '--throughput', '1000', '--spawn', '2'],
      quick: ['--rounds', '1', '--latency', '200', '--throughput', '3000', '--spawn', '2'],
      full: ['--rounds', '5', '--latency', '2000', '--throughput', '20000', '--spawn', '10'],
    }));
    return {
      params: { tasks, roundTrips, reps, spawnsSeq, spawnsPar, poolSize: POOL_SIZE, spawnConcurrency: SPAWN_CONCURRENCY },
      executorAlone,
      piscina: { tasksPerSec: summary(out.piscina.map((r) => r.tasksPerSec)), roundTripMs: summary(out.piscina.map((r) => r.roundTripMs)) },
      tinypool: { tasksPerSec: summary(out.tinypool.map((r) => r.tasksPerSec)), roundTripMs: summary(out.tinypool.map((r) => r.roundTripMs)) },
      spawn: { startMs: summary(out.spawn.map((r) => r.startMs)), spawnsPerSec: summary(out.spawn.map((r) => r.spawnsPerSec)) },
    };
  } finally {
    await piscina.destroy();
    await tinypool.destroy();
  }
}

/**
 * kiln's executor with no run engine and no database: the executor engineer's own
 * benchmark (bench/executor-roundtrip.mjs, interleaved inside itself), run as it is.
 */
function executorRoundtrip(args) {
  const script = fileURLToPath(new URL('../executor-roundtrip.mjs', import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [script, '--json', ...args], { maxBuffer: 10 * 1024 * 1024, timeout: 300_000 }, (err, stdout) => {
      if (err) return resolve({ error: err.message.split('\n')[0], args });
      try {
        const doc = JSON.parse(stdout);
        resolve({ args, rows: doc.rows, settings: doc.settings });
      } catch (parseErr) {
        resolve({ error: `unreadable output: ${parseErr.message}`, args });
      }
    });
  });
}

async function throughput(pool, n) {
  const started = performance.now();
  const all = new Array(n);
  for (let i = 0; i < n; i++) all[i] = pool.run(null);
  await Promise.all(all);
  return n / ((performance.now() - started) / 1000);
}

/** Median of one-at-a-time round trips (submit, wait for the result, next). */
async function roundTrip(pool, n) {
  const times = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await pool.run(null);
    times[i] = performance.now() - t0;
  }
  return median(times);
}

function spawnNode() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`node -e 0 exited with ${code}`))));
  });
}

/** Median wall time of `node -e 0`, one at a time. */
async function spawnSequential(n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await spawnNode();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** `n` spawns of `node -e 0`, `concurrency` at a time: spawns per second. */
async function spawnParallel(n, concurrency) {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < n) {
      next++;
      await spawnNode();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return n / ((performance.now() - started) / 1000);
}

export function render(r) {
  const p = r.params;
  const md = [
    `Noop task file, pools of ${p.poolSize} workers (one per core), pre-warmed. Throughput: ${fmt(p.tasks)} tasks submitted at once; round trip: ${fmt(p.roundTrips)} tasks one at a time (median). Spawn: \`node -e 0\` one at a time (${p.spawnsSeq} per round, median) and ${p.spawnsPar} with ${p.spawnConcurrency} in flight. ${p.reps} interleaved rounds; figures are median (min-max) over rounds.`,
    '',
    table(['limit', 'throughput', 'round trip / start-up'], [
      ['piscina (worker threads) noop', fmtSummary(r.piscina.tasksPerSec, 'tasks/s'), fmtSummary(r.piscina.roundTripMs, 'ms')],
      ['tinypool child_process noop', fmtSummary(r.tinypool.tasksPerSec, 'tasks/s'), fmtSummary(r.tinypool.roundTripMs, 'ms')],
      ['spawn `node -e 0`', fmtSummary(r.spawn.spawnsPerSec, 'spawns/s'), fmtSummary(r.spawn.startMs, 'ms')],
    ]),
  ];
  const alone = r.executorAlone;
  if (alone?.rows) {
    md.push('', `kiln's executor alone, no run engine and no database (\`bench/executor-roundtrip.mjs\` of the executor's author, run as it is with \`${alone.args.join(' ')}\`; its own interleaving and in-flight counts: raw pools 4 x cores, kiln 2 x cores):`, '');
    md.push(table(['system', 'in flight', 'round trip median / p99', 'throughput'], alone.rows.map((row) => [row.system, row.inFlight, `${fmt(row.medianMs)} / ${fmt(row.p99Ms)} ms`, `${fmt(row.tasksPerSec)} tasks/s`])));
  } else if (alone?.error) {
    md.push('', `kiln's executor alone: bench/executor-roundtrip.mjs failed (${alone.error}).`);
  }
  const charts = [{
    name: 'limits-throughput',
    alt: 'Raw noop throughput of piscina, tinypool and node spawn',
    svg: barChart({
      title: 'Raw noop throughput, no kiln', unit: 'tasks/s', log: true,
      bars: [
        { label: 'piscina (threads)', value: r.piscina.tasksPerSec.median, color: colorFor('thread') },
        { label: 'tinypool (child_process)', value: r.tinypool.tasksPerSec.median, color: colorFor('process') },
        { label: `node -e 0 (${p.spawnConcurrency} at once)`, value: r.spawn.spawnsPerSec.median, color: colorFor('spawn') },
      ],
    }),
  }];
  return { markdown: md.join('\n'), charts };
}
