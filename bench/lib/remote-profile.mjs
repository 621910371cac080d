/**
 * The profile job of the remote case's missed targets (bench/lib/profile-jobs.mjs hands it
 * here): the case's workload again (40 runs x 40 noop tasks through Redis, 2 `kiln worker`
 * hosts), with
 *   - the scheduler side (run engine, store, bullmq executor) in a mode server under V8's CPU
 *     profiler, as every other profile job (the measured repetitions only);
 *   - every worker host under `node --cpu-prof` for its whole life (start, warm-up, the
 *     profiled repetitions, stop): its main thread, where BullMQ's Worker, the Redis client
 *     and kiln's local supervisor run (thread-isolation pool workers write profiles of their
 *     own, not summarized; process-isolation pool children are other processes).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeProfile } from './cpu-profile.mjs';
import { writeDag } from './dags.mjs';
import { startModeServer } from './mode-client.mjs';
import { startOwnRedis, startWorkerHosts } from './remote-rig.mjs';

const HOSTS = 2;

export async function runRemoteProfileJob(job, { tmpDir, outDir, name }) {
  const work = mkdtempSync(join(tmpDir, `profile-remote-${job.isolation}-`));
  const dagsFolder = join(work, 'dags');
  mkdirSync(dagsFolder);
  const file = writeDag(dagsFolder, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });
  const tag = `remote-${job.isolation}`;
  const redis = await startOwnRedis(join(work, 'redis'));
  let server = null;
  let hosts = null;
  try {
    server = startModeServer(`profile-${tag}`);
    const info = await server.call('open', { home: join(work, 'scheduler'), config: { executor: 'bullmq', redisUrl: redis.url, dagsFolder, defaultIsolation: job.isolation } });
    const slots = Math.max(1, Math.floor(info.parallelism / HOSTS));
    hosts = await startWorkerHosts({ redisUrl: redis.url, dagsFolder, dir: join(work, 'hosts'), count: HOSTS, slots, isolation: job.isolation, cpuProfDir: join(outDir, `${name}-${tag}-hosts`) });
    await server.call('load', { file });
    await server.call('run', { file, runs: 8 }); // warm-up; the executor has read the hosts' beats by now
    const out = join(outDir, `${name}-${tag}.cpuprofile`);
    const r = await server.call('profile', { file, runs: job.runs, reps: job.reps, out });
    await server.close();
    server = null;
    await hosts.stop(); // the hosts write their profiles as they exit
    const summary = summarizeProfile(out);
    const hostProfiles = hosts.profiles().map((h) => {
      if (h.file === null) return { name: h.name, error: 'no main-thread .cpuprofile was written' };
      const s = summarizeProfile(h.file);
      return { name: h.name, profileFile: h.file, totalMs: s.totalMs, areas: s.areas, top: s.functions.slice(0, 15), inclusive: s.inclusive.filter((f) => f.area.startsWith('kiln')).slice(0, 15), nativeByCaller: s.nativeByCaller.slice(0, 8) };
    });
    return {
      ...job, file, parallelism: info.parallelism, slotsPerHost: slots, profileFile: out, wallMs: r.wallMs, tis: r.tis, transactions: r.transactions,
      totalMs: summary.totalMs, areas: summary.areas, top: summary.functions.slice(0, 15), inclusive: summary.inclusive.filter((f) => f.area.startsWith('kiln')).slice(0, 15), nativeByCaller: summary.nativeByCaller.slice(0, 8),
      hosts: hostProfiles,
    };
  } finally {
    await server?.close();
    await hosts?.stop();
    await redis.stop();
    rmSync(work, { recursive: true, force: true }); // the profiles are in outDir
  }
}
