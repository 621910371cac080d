/**
 * Case 6, a peer in the same run: BullMQ (Redis) processing N noop jobs through a sandboxed
 * processor file, like with like against kiln's two pooled isolations:
 *   - in worker threads (`useWorkerThreads: true`), against kiln thread;
 *   - in child processes (BullMQ's default sandbox, `useWorkerThreads: false`: a pool of
 *     forked processes, kept and reused between jobs), against kiln process;
 * kiln running the same number of noop task instances (40 runs of a 40-task DAG whose tasks
 * have no dependencies) at the same concurrency, end to end with SQLite. Interleaved per
 * repetition: BullMQ threads, BullMQ processes, kiln thread, kiln process, ...
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { writeDag } from '../lib/dags.mjs';
import { interleave } from '../lib/interleave.mjs';
import { startModeServer } from '../lib/mode-client.mjs';
import { fmt, fmtRatio, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { ratio, summary } from '../lib/stats.mjs';
import { barChart, colorFor } from '../lib/svg.mjs';

export const id = 'bullmq';
export const title = 'A peer: BullMQ sandboxed worker threads and child processes against kiln (case 6)';

const PROCESSOR = fileURLToPath(new URL('../fixtures/noop-worker.mjs', import.meta.url));
export const REDIS_URL = process.env.KILN_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const TASKS_PER_RUN = 40;

function connection() {
  const u = new URL(REDIS_URL);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null, ...(u.password ? { password: decodeURIComponent(u.password) } : {}) };
}

export async function run({ scale, log, tmpDir }) {
  const runs = pick(scale, { smoke: 2, quick: 40, full: 40 });
  const jobs = runs * TASKS_PER_RUN;
  const reps = pick(scale, { smoke: 1, quick: 3, full: 7 });
  const flat = writeDag(tmpDir, { dagId: 'bench_flat40_noop', shape: 'flat', tasks: TASKS_PER_RUN, work: 'noop', maxActiveTasks: TASKS_PER_RUN });

  const servers = {};
  let bull = null;
  let bullProcess = null;
  try {
    for (const mode of ['thread', 'process']) {
      servers[mode] = startModeServer(mode);
      servers[mode].info = await servers[mode].call('open', { home: join(tmpDir, mode), config: { executor: mode } });
      await servers[mode].call('load', { file: flat });
      await servers[mode].call('run', { file: flat, runs: Math.min(runs, 8) }); // warm-up
    }
    const concurrency = servers.thread.info.parallelism;
    bull = await openBull(concurrency);
    await bull.process(Math.min(jobs, 400)); // warm-up: start every worker thread
    bullProcess = await openBull(concurrency, { useWorkerThreads: false });
    await bullProcess.process(Math.min(jobs, 400)); // warm-up: fork every child process
    log(`open: kiln parallelism ${concurrency}, BullMQ concurrency ${concurrency} (worker threads; child processes), ${jobs} jobs per round`);

    const out = await interleave(reps, {
      bullmq: { run: async () => bull.process(jobs) },
      bullmqProcess: { run: async () => bullProcess.process(jobs) },
      thread: { run: async () => servers.thread.call('run', { file: flat, runs }) },
      process: { run: async () => servers.process.call('run', { file: flat, runs }) },
    }, { onRound: (r) => log(`bullmq: round ${r + 1}/${reps} done`) });

    const perSec = (list) => summary(list.map((r) => r.tiPerSec ?? r.jobsPerSec));
    const result = {
      params: { jobs, runs, tasksPerRun: TASKS_PER_RUN, concurrency, reps, redis: REDIS_URL.replace(/\/\/[^@]*@/, '//***@') },
      bullmq: { jobsPerSec: perSec(out.bullmq), wallMs: summary(out.bullmq.map((r) => r.wallMs)) },
      bullmqProcess: { jobsPerSec: perSec(out.bullmqProcess), wallMs: summary(out.bullmqProcess.map((r) => r.wallMs)), children: bullProcess.children() },
      thread: { jobsPerSec: perSec(out.thread), wallMs: summary(out.thread.map((r) => r.wallMs)) },
      process: { jobsPerSec: perSec(out.process), wallMs: summary(out.process.map((r) => r.wallMs)) },
    };
    result.ratios = {
      threadOverBullmq: ratio(result.thread.jobsPerSec.median, result.bullmq.jobsPerSec.median),
      processOverBullmq: ratio(result.process.jobsPerSec.median, result.bullmq.jobsPerSec.median),
      // Like with like: each kiln isolation against BullMQ's sandbox of the same kind.
      processOverBullmqProcess: ratio(result.process.jobsPerSec.median, result.bullmqProcess.jobsPerSec.median),
      threadOverBullmqProcess: ratio(result.thread.jobsPerSec.median, result.bullmqProcess.jobsPerSec.median),
    };
    // Per round (each round runs all four back to back): steadier than the ratio of medians on a noisy machine.
    result.perRound = {
      threadOverBullmq: summary(out.thread.map((r, i) => ratio(r.tiPerSec, out.bullmq[i]?.jobsPerSec)).filter((x) => x !== null)),
      processOverBullmqProcess: summary(out.process.map((r, i) => ratio(r.tiPerSec, out.bullmqProcess[i]?.jobsPerSec)).filter((x) => x !== null)),
    };
    return result;
  } finally {
    if (bullProcess) await bullProcess.close();
    if (bull) await bull.close();
    for (const s of Object.values(servers)) await s.close();
  }
}

/**
 * A queue and a sandboxed Worker (the processor given as a file): in worker threads, or with
 * `useWorkerThreads: false` in child processes (BullMQ's child pool forks one per concurrent
 * job and keeps it for the next). process(n) adds n jobs and waits for all.
 */
export async function openBull(concurrency, { useWorkerThreads = true } = {}) {
  const name = `kiln-bench-${process.pid}-${Date.now()}-${useWorkerThreads ? 'threads' : 'processes'}`;
  const queue = new Queue(name, { connection: connection() });
  // BullMQ pipes every child process's stdout and stderr into ours: more listeners than Node's warning threshold.
  if (!useWorkerThreads) for (const s of [process.stdout, process.stderr]) s.setMaxListeners(Math.max(s.getMaxListeners(), 2 * concurrency + 10));
  const worker = new Worker(name, PROCESSOR, {
    connection: connection(),
    concurrency,
    useWorkerThreads,
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 0 },
  });
  let completed = 0;
  let failed = 0;
  let waiter = null;
  const check = () => {
    if (waiter && completed + failed >= waiter.target) waiter.resolve();
  };
  worker.on('completed', () => {
    completed++;
    check();
  });
  worker.on('failed', (_job, err) => {
    failed++;
    if (failed === 1) process.stderr.write(`bullmq job failed: ${err?.message}\n`);
    check();
  });
  worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  let batch = 0;
  return {
    async process(n) {
      completed = 0;
      failed = 0;
      batch++;
      const done = new Promise((resolve) => (waiter = { target: n, resolve }));
      const started = performance.now();
      const jobs = Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i }, opts: { jobId: `${batch}-${i}` } }));
      for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
      await done;
      const wallMs = performance.now() - started;
      if (failed > 0) throw new Error(`${failed} BullMQ jobs failed`);
      return { wallMs, jobsPerSec: n / (wallMs / 1000) };
    },
    /** The sandbox's pool as it stands (between rounds every child is free): how many, and of which kind. */
    children() {
      const pool = worker.childPool;
      const all = pool ? [...Object.values(pool.retained), ...pool.getAllFree()] : [];
      return { count: all.length, processes: all.filter((c) => c.childProcess).length, threads: all.filter((c) => c.worker).length };
    },
    async close() {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
}

export function render(r) {
  const p = r.params;
  const bp = r.bullmqProcess; // absent in results stored before the child-process peer was added
  const rows = [
    ['BullMQ sandboxed, worker threads', fmtSummary(r.bullmq.jobsPerSec), fmtSummary(r.bullmq.wallMs, 'ms'), '1x', bp ? fmtRatio(ratio(r.bullmq.jobsPerSec.median, bp.jobsPerSec.median)) : '-'],
    ...(bp ? [[`BullMQ sandboxed, child processes${bp.children ? ` (${bp.children.processes} kept)` : ''}`, fmtSummary(bp.jobsPerSec), fmtSummary(bp.wallMs, 'ms'), fmtRatio(ratio(bp.jobsPerSec.median, r.bullmq.jobsPerSec.median)), '1x']] : []),
    ['kiln thread', fmtSummary(r.thread.jobsPerSec), fmtSummary(r.thread.wallMs, 'ms'), `**${fmtRatio(r.ratios.threadOverBullmq)}**`, bp ? fmtRatio(r.ratios.threadOverBullmqProcess) : '-'],
    ['kiln process', fmtSummary(r.process.jobsPerSec), fmtSummary(r.process.wallMs, 'ms'), fmtRatio(r.ratios.processOverBullmq), bp ? `**${fmtRatio(r.ratios.processOverBullmqProcess)}**` : '-'],
  ];
  const md = [
    `${fmt(p.jobs)} noop jobs per round. BullMQ ${'`Worker`'}s with a processor file path (sandboxed), concurrency ${p.concurrency}, Redis at ${p.redis}: one with \`useWorkerThreads: true\` (a worker thread per concurrent job)${bp ? ', one with `useWorkerThreads: false` (BullMQ\'s default sandbox: a forked child process per concurrent job, kept and reused)' : ''}; time from the first \`addBulk\` to the last \`completed\` event. kiln: ${p.runs} runs of a DAG of ${p.tasksPerRun} independent noop tasks (${fmt(p.jobs)} task instances), executor parallelism ${p.concurrency}, end to end with SQLite (every state change committed). ${p.reps} interleaved rounds. Like with like (in bold): kiln thread against BullMQ's worker threads, kiln process against BullMQ's child processes.`,
    '',
    table(['system', 'jobs/s', 'wall', 'vs BullMQ worker threads', 'vs BullMQ child processes'], rows),
    '',
    ...(r.perRound ? [`Per round (the four sides back to back, then the ratio; median and range): kiln thread / BullMQ threads ${fmtRatio(r.perRound.threadOverBullmq.median)} (${fmtRatio(r.perRound.threadOverBullmq.min)}-${fmtRatio(r.perRound.threadOverBullmq.max)}), kiln process / BullMQ processes ${fmtRatio(r.perRound.processOverBullmqProcess.median)} (${fmtRatio(r.perRound.processOverBullmqProcess.min)}-${fmtRatio(r.perRound.processOverBullmqProcess.max)}).`, ''] : []),
    'BullMQ persists every job and its completion in Redis (over TCP); kiln persists every task-instance state change in SQLite (in process). Both keep the work off the main thread.',
  ].join('\n');
  const bars = [
    { label: 'BullMQ worker threads', value: r.bullmq.jobsPerSec.median, color: colorFor('bullmq') },
    { label: 'kiln thread', value: r.thread.jobsPerSec.median, color: colorFor('thread') },
    ...(bp ? [{ label: 'BullMQ child processes', value: bp.jobsPerSec.median, color: colorFor('bullmq') }] : []),
    { label: 'kiln process', value: r.process.jobsPerSec.median, color: colorFor('process') },
  ];
  const charts = [{
    name: 'bullmq',
    alt: 'kiln against BullMQ, noop jobs per second',
    svg: barChart({ title: `${fmt(p.jobs)} noop jobs, concurrency ${p.concurrency}`, unit: 'jobs/s', bars }),
  }];
  return { markdown: md, charts };
}
