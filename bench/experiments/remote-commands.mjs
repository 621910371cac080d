/**
 * What a remote task instance costs Redis: 40 runs x 40 noop tasks through the bullmq executor
 * and 2 `kiln worker` hosts (as bench/cases/remote.mjs runs them), with Redis's own
 * `INFO commandstats` reset before and read after, so each command's calls and server time
 * per task instance are exact, not sampled (commands run inside BullMQ's Lua scripts count
 * there too). Also the CPU of the scheduler and of each host, the main thread apart from the
 * others (pool workers, GC helpers and libuv, all named `node`; from /proc), and with
 * MONITOR=1 the top-level commands by client (redis-cli monitor during the measured run).
 * Run after `npm run build`:
 *
 *   [MONITOR=1] node bench/experiments/remote-commands.mjs [thread|process] [runs]
 *
 * 2026-11-30 (2-core AMD EPYC, before the early hint): per task instance the scheduler sends
 * 1 EVALSHA (add) and 0.6 XREAD; a host 2 EVALSHA (moveToFinished, which rarely finds a next
 * job since kiln adds jobs only for free slots, then moveToActive), 0.5 BZPOPMIN, 1 GET (the
 * cancel fence) and 1 XADD (the finished hint); Redis spends ~280 us per task instance in the
 * three scripts, of ~390 us in all.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDag } from '../lib/dags.mjs';
import { startModeServer } from '../lib/mode-client.mjs';
import { procCpuMs } from '../lib/proc-cpu.mjs';
import { hasRedisServer, NO_REDIS_SERVER, startOwnRedis, startWorkerHosts } from '../lib/remote-rig.mjs';

const isolation = process.argv[2] ?? 'thread';
const runs = Number(process.argv[3] ?? 40);
if (!hasRedisServer()) {
  console.log(NO_REDIS_SERVER);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'kiln-remote-commands-'));
const dags = join(dir, 'dags');
mkdirSync(dags);
const wide = writeDag(dags, { dagId: 'bench_wide40_noop', shape: 'wide', tasks: 40, work: 'noop' });

/** `INFO commandstats` as { command: { calls, usec } }. */
function commandStats(port) {
  const out = spawnSync('redis-cli', ['-p', String(port), 'info', 'commandstats'], { encoding: 'utf8' }).stdout;
  const stats = {};
  for (const m of out.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  return stats;
}

/** CPU ms of a process's main thread and of all its other threads together. */
function threadCpu(pid) {
  const byName = { main: 0, others: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) byName[Number(tid) === pid ? 'main' : 'others'] += procCpuMs(pid, tid);
  return byName;
}

const redis = await startOwnRedis(join(dir, 'redis'));
let hosts = null;
let remote = null;
try {
  hosts = await startWorkerHosts({ redisUrl: redis.url, dagsFolder: dags, dir: join(dir, 'hosts'), count: 2, slots: 4, isolation });
  remote = startModeServer(`bullmq-${isolation}`);
  await remote.call('open', { home: join(dir, 'home'), config: { executor: 'bullmq', redisUrl: redis.url, dagsFolder: dags, defaultIsolation: isolation, parallelism: 8 } });
  await remote.call('load', { file: wide });
  await remote.call('run', { file: wide, runs: 8 }); // warm-up
  spawnSync('redis-cli', ['-p', String(redis.port), 'config', 'resetstat']);
  const pids = { scheduler: remote.pid, ...Object.fromEntries(hosts.hosts.map((h) => [h.name, h.pid])) };
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, threadCpu(pid)]));
  const monitorFile = join(dir, 'monitor.txt');
  const monitor = process.env.MONITOR ? spawn('sh', ['-c', `redis-cli -p ${redis.port} monitor > ${monitorFile}`]) : null;
  const r = await remote.call('run', { file: wide, runs });
  if (monitor) {
    const clients = {};
    for (const line of spawnSync('redis-cli', ['-p', String(redis.port), 'client', 'list'], { encoding: 'utf8' }).stdout.split('\n')) {
      const addr = /addr=(\S+)/.exec(line)?.[1];
      if (addr) clients[addr] = (/name=(\S*)/.exec(line)?.[1] || '?').replace(/-[0-9a-f]{8}/g, '').replace(/^(kiln-worker-w)\d/, '$1N');
    }
    spawnSync('pkill', ['-f', `redis-cli -p ${redis.port} monitor`]);
    const counts = {};
    for (const line of readFileSync(monitorFile, 'utf8').split('\n')) {
      const m = /\[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]+)")?/.exec(line);
      if (!m || m[1] === 'lua') continue;
      const who = clients[m[1]] ?? m[1];
      const what = m[2] === 'evalsha' ? `evalsha ${m[3]?.slice(0, 8)}` : m[2];
      counts[`${who} ${what}`] = (counts[`${who} ${what}`] ?? 0) + 1;
    }
    for (const [k, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) console.log(`${(n / r.tis).toFixed(2).padStart(6)}  ${k}`);
  }
  for (const [k, pid] of Object.entries(pids)) {
    const after = threadCpu(pid);
    const parts = Object.entries(after).map(([name, ms]) => [name, (ms - (before[k][name] ?? 0)) / r.tis]).filter(([, v]) => v > 0.005).sort((a, b) => b[1] - a[1]);
    console.log(`${k}: CPU ms per TI by thread: ${parts.map(([n, v]) => `${n} ${v.toFixed(3)}`).join(', ')}`);
  }
  const stats = commandStats(redis.port);
  const rows = Object.entries(stats).sort((a, b) => b[1].calls - a[1].calls);
  console.log(`${isolation}: ${r.tis} task instances, ${Math.round(r.tiPerSec)} TI/s`);
  console.log('command          calls/TI   server us/TI');
  let calls = 0;
  let usec = 0;
  for (const [name, s] of rows) {
    calls += s.calls;
    usec += s.usec;
    console.log(`${name.padEnd(16)} ${(s.calls / r.tis).toFixed(2).padStart(8)} ${(s.usec / r.tis).toFixed(1).padStart(13)}`);
  }
  console.log(`${'all'.padEnd(16)} ${(calls / r.tis).toFixed(2).padStart(8)} ${(usec / r.tis).toFixed(1).padStart(13)}`);
} finally {
  await remote?.close();
  await hosts?.stop();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
