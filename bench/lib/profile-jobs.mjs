/**
 * CPU profiles for the targets a run missed: the same workload again, in a mode server,
 * under V8's CPU profiler (the main thread, where kiln's run engine, store and supervisor
 * run), summarized as the hottest functions and the time per area.
 */
import { join } from 'node:path';
import { EXAMPLE_DAG, writeDag, writeMapDags } from './dags.mjs';
import { summarizeProfile } from './cpu-profile.mjs';
import { startModeServer } from './mode-client.mjs';

/** Which workload explains which target (by the target's name prefix). */
export function jobsForMissedTargets(targets, tmpDir) {
  const files = {
    example: () => EXAMPLE_DAG,
    wide40: () => writeDag(tmpDir, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' }),
    chain100: () => writeDag(tmpDir, { dagId: 'bench_chain100_noop', shape: 'chain', tasks: 100, work: 'noop' }),
    flat40: () => writeDag(tmpDir, { dagId: 'bench_flat40_noop', shape: 'flat', tasks: 40, work: 'noop', maxActiveTasks: 40 }),
    mapped10k: () => writeMapDags(tmpDir, { items: 10_000 }).mapped,
  };
  const jobs = new Map();
  const add = (key, job) => {
    const existing = jobs.get(key);
    if (existing) existing.targets.push(job.targets[0]);
    else jobs.set(key, job);
  };
  for (const t of targets) {
    if (t.met !== false) continue;
    const n = t.name;
    if (n.startsWith('40 runs x 40 noop tasks end to end, thread') || n.startsWith('40x40 noop: thread')) add('thread-40x40', { mode: 'thread', dag: 'wide40', runs: 40, reps: 10, label: 'thread, 40 runs x 40 noop tasks', targets: [n] });
    else if (n.startsWith('40 runs x 40 noop tasks end to end, process') || n.startsWith('40x40 noop: process')) add('process-40x40', { mode: 'process', dag: 'wide40', runs: 40, reps: 10, label: 'process, 40 runs x 40 noop tasks', targets: [n] });
    else if (n.startsWith('12-task example DAG')) add('thread-12x1', { mode: 'thread', dag: 'example', runs: 1, reps: 200, label: 'thread, the 12-task example DAG, one run at a time', targets: [n] });
    else if (n.startsWith('dags test')) {
      const mode = n.includes('process') ? 'process' : 'thread';
      add(`${mode}-chain100`, { mode, dag: 'chain100', runs: 1, reps: 20, label: `${mode}, 100-task noop chain, one task at a time (dags test per-task overhead)`, targets: [n] });
    }
    else if (n.startsWith('40 runs x 40 noop tasks, thread: metrics on')) add('thread-40x40-metrics', { mode: 'thread', dag: 'wide40', runs: 40, reps: 10, metrics: true, label: 'thread, 40 runs x 40 noop tasks, metrics on (not scraped while profiled)', targets: [n] });
    else if (n.startsWith('one run mapping a noop task over 10,000 items') || n.startsWith('expansion of a map over 10,000 items')) add('thread-mapped10k', { mode: 'thread', dag: 'mapped10k', runs: 1, reps: 3, label: 'thread, one run mapping a noop task over 10,000 items', targets: [n] });
    else if (n.startsWith('40 runs x 40 noop tasks end to end on PostgreSQL')) add('postgres-thread-40x40', { mode: 'thread', postgres: true, dag: 'wide40', runs: 40, reps: 5, label: 'thread on PostgreSQL, 40 runs x 40 noop tasks', targets: [n] });
    else if (n.startsWith('two kiln schedulers sharing PostgreSQL')) add('postgres-two-schedulers', { mode: 'thread', postgres: true, schedulers: 2, dag: 'wide40', runs: 80, label: 'two `kiln scheduler` processes (thread) sharing PostgreSQL, 80 runs x 40 noop tasks', targets: [n] });
    else if (n.startsWith('kiln process >= 1.5x BullMQ')) add('process-flat40x40', { mode: 'process', dag: 'flat40', runs: 40, reps: 10, label: 'process, 40 runs x 40 independent noop tasks (the BullMQ workload)', targets: [n] });
    else if (n.startsWith('kiln thread >= 2x BullMQ')) add('thread-flat40x40', { mode: 'thread', dag: 'flat40', runs: 40, reps: 10, label: 'thread, 40 runs x 40 independent noop tasks (the BullMQ workload)', targets: [n] });
    else if (n.startsWith('remote workers')) {
      const isolation = n.includes('process') ? 'process' : 'thread';
      add(`remote-${isolation}`, { mode: 'bullmq', remote: true, isolation, dag: 'wide40', runs: 40, reps: 5, label: `remote workers (bullmq, 2 kiln worker hosts, ${isolation}), 40 runs x 40 noop tasks: the scheduler and the worker hosts`, targets: [n] });
    }
  }
  return [...jobs.values()].map((j) => ({ ...j, file: files[j.dag]() }));
}

export async function runProfileJob(job, { tmpDir, outDir, name }) {
  // Its own Redis and worker hosts, each host profiled too (bench/lib/remote-profile.mjs).
  if (job.remote) return (await import('./remote-profile.mjs')).runRemoteProfileJob(job, { tmpDir, outDir, name });
  // A PostgreSQL database of its own; the two-scheduler job profiles `kiln scheduler` processes (bench/lib/postgres-profile.mjs).
  if (job.postgres) return (await import('./postgres-profile.mjs')).runPostgresProfileJob(job, { tmpDir, outDir, name });
  const server = startModeServer(`profile-${job.mode}`);
  try {
    const tag = `${job.mode}-${job.dag}${job.metrics ? '-metrics' : ''}`;
    await server.call('open', { home: join(tmpDir, `profile-${tag}`), config: { executor: job.mode }, metrics: job.metrics ?? false });
    const out = join(outDir, `${name}-${tag}.cpuprofile`);
    const r = await server.call('profile', { file: job.file, runs: job.runs, reps: job.reps, out });
    const summary = summarizeProfile(out);
    return { ...job, profileFile: out, wallMs: r.wallMs, tis: r.tis, transactions: r.transactions, totalMs: summary.totalMs, areas: summary.areas, top: summary.functions.slice(0, 15), inclusive: summary.inclusive.filter((f) => f.area.startsWith('kiln')).slice(0, 15), nativeByCaller: summary.nativeByCaller.slice(0, 8) };
  } finally {
    await server.close();
  }
}
