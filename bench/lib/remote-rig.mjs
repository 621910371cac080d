/**
 * What the remote case (bench/cases/remote.mjs) and its profile job run on: a Redis server of
 * the bench's own and `kiln worker` hosts, as a user starts them.
 *
 *   const redis = await startOwnRedis(dir);       // redis-server on a free port, no persistence
 *   const hosts = await startWorkerHosts({ redisUrl: redis.url, dagsFolder, dir, count: 2, slots: 4, isolation: 'thread' });
 *   ... a kiln context with executor 'bullmq' and redisUrl: redis.url ...
 *   await hosts.stop(); await redis.stop();
 *
 * The Redis is `redis-server` from the machine (Debian package redis-server), in a temporary
 * folder, bound to 127.0.0.1 on a free port, `--save '' --appendonly no`: the shared Redis on
 * 6379 (the BullMQ case's) is never touched. Every process started here is also killed when
 * the bench process exits without stopping it (a failed case).
 * (It shares scripts/redis-server.mjs with the tests' test/helpers/own-redis.ts, which adds
 * persistence and restarts.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, hasRedisServer, NO_REDIS_SERVER, spawnRedis } from '../../scripts/redis-server.mjs';
import { procCpuMs } from './proc-cpu.mjs';

export { hasRedisServer, NO_REDIS_SERVER };

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/** Every child started here and not yet stopped: killed at exit whatever happens. */
const alive = new Set();
process.on('exit', () => {
  for (const child of alive) killTree(child.pid, 'SIGKILL');
});

/** A private redis-server: { url, port, pid, stop() }. */
export async function startOwnRedis(dir) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = await spawnRedis({ port, dir, persistent: false });
  alive.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      alive.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `count` `kiln worker` processes (dist/ CLI), each in a folder of its own under `dir` (its
 * logs), environment without any KILN_* setting or database URL but KILN_REDIS_URL and
 * KILN_DAGS_FOLDER. Resolves once every one says it is consuming and `kiln workers list
 * --json` lists them all. `cpuProfDir`: each runs under `node --cpu-prof` writing there
 * (the profile is written when the worker exits, at stop()).
 */
export async function startWorkerHosts({ redisUrl, dagsFolder, dir, count = 2, slots, isolation, queues = 'default', cpuProfDir = null, log = () => {} }) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('KILN_') || key.includes('DATABASE_URL')) delete env[key];
  Object.assign(env, { KILN_REDIS_URL: redisUrl, KILN_DAGS_FOLDER: dagsFolder });
  const hosts = [];
  const stopAll = async () => {
    await Promise.all(hosts.map((h) => h.stop()));
  };
  try {
    for (let i = 1; i <= count; i++) {
      const name = `w${i}`;
      const cwd = join(dir, name);
      mkdirSync(cwd, { recursive: true });
      const flags = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, name)}`] : [];
      const args = [...flags, CLI, 'worker', '--queues', queues, '--slots', String(slots), '--isolation', isolation, '--name', name, '--drain', '0'];
      const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      alive.add(child);
      let output = '';
      child.stdout.on('data', (c) => (output += c));
      child.stderr.on('data', (c) => (output += c));
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
      hosts.push({
        name,
        pid: child.pid,
        output: () => output,
        cpuProfDir: cpuProfDir ? join(cpuProfDir, name) : null,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            // SIGTERM: the worker stops its pools and exits 0 (and writes its --cpu-prof profile).
            child.kill('SIGTERM');
            const timer = setTimeout(() => killTree(child.pid, 'SIGKILL'), 15_000);
            const code = await exited;
            clearTimeout(timer);
            if (code !== 0) log(`worker ${name} exited with ${code}: ${output.trim().split('\n').slice(-3).join(' | ')}`);
          }
          alive.delete(child);
        },
        exited,
      });
    }
    const deadline = Date.now() + 30_000;
    for (const h of hosts) {
      while (!h.output().includes('consuming')) {
        const code = await Promise.race([h.exited, sleep(50).then(() => undefined)]);
        if (code !== undefined) throw new Error(`kiln worker ${h.name} exited (${code}) before consuming: ${h.output().trim()}`);
        if (Date.now() > deadline) throw new Error(`kiln worker ${h.name} did not start within 30 s: ${h.output().trim()}`);
      }
    }
    // As a user checks it: the hosts the scheduler will see (their beats in Redis).
    let listed = [];
    while (listed.length < count) {
      listed = await listWorkers(redisUrl, env);
      if (listed.length >= count) break;
      if (Date.now() > deadline) throw new Error(`kiln workers list shows ${listed.length} of ${count} hosts`);
      await sleep(100);
    }
    log(`${count} kiln worker hosts live (${isolation}, ${slots} slots each): ${listed.map((h) => `${h.name} pid ${h.pid}`).join(', ')}`);
    return {
      hosts,
      slots: slots * count,
      listed,
      stop: stopAll,
      /** The main thread's profile of each host (after stop()): node names it CPU.<date>.<time>.<pid>.<thread 0>.<seq>.cpuprofile. */
      profiles() {
        return hosts.map((h) => {
          const files = readdirSync(h.cpuProfDir).filter((f) => f.includes(`.${h.pid}.0.`) && f.endsWith('.cpuprofile'));
          return { name: h.name, pid: h.pid, file: files.length > 0 ? join(h.cpuProfDir, files[0]) : null };
        });
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** `kiln workers list --json`, run as a user runs it. */
async function listWorkers(redisUrl, env) {
  const { code, stdout, stderr } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'workers', 'list', '--json'], { env: { ...env, KILN_REDIS_URL: redisUrl }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  if (code !== 0) throw new Error(`kiln workers list exited ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout).workers;
}

/** A process and its children (a process-isolation worker's pool): SIGKILL for what would not stop. */
function killTree(pid, signal) {
  const r = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  for (const child of (r.stdout ?? '').split('\n').map((s) => Number(s.trim())).filter((n) => n > 0)) killTree(child, signal);
  try {
    process.kill(pid, signal);
  } catch {}
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * CPU time (user + system, ms) a process and all its descendants have used so far, from
 * /proc (worker threads count in their process). Read from the case process around a
 * measurement: scheduler, worker hosts and Redis each in their own processes. Off Linux: 0.
 */
export function cpuMsOfTree(pid) {
  let ms = procCpuMs(pid);
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const child of children ? children.split(' ') : []) ms += cpuMsOfTree(Number(child));
  } catch {}
  return ms;
}
