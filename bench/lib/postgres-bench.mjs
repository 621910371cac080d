/**
 * What the postgres case (bench/cases/postgres.mjs) and its profile jobs run on: a database of
 * the bench's own on the PostgreSQL server at KILN_TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/test, as the tests and case 4), created with
 * CREATE DATABASE and dropped (WITH (FORCE)) at the end, and `kiln scheduler` processes on it.
 *
 *   const db = await openBenchDatabase();   // { skipped } when no server answers
 *   db.url                                   // postgres://.../kiln_bench_<pid>_<hex>
 *   db.schemaUrl('r1_one', 'app')            // ?schema=...&application_name=... (kiln creates the schema)
 *   await db.drop();
 *
 * Every process started here is also killed when the bench process exits without stopping it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { procCpuMs } from './proc-cpu.mjs';

export const POSTGRES_URL = process.env.KILN_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
/** The preload that counts round trips (and writes them with process.resourceUsage() at exit). */
export const PG_COUNT = fileURLToPath(new URL('./pg-count.mjs', import.meta.url));

export const masked = (url) => url.replace(/\/\/([^:@/]*):[^@]*@/, '//$1:***@');

const alive = new Set();
process.on('exit', () => {
  for (const child of alive) killTree(child.pid, 'SIGKILL');
});

async function connect(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/**
 * A fresh database for this bench process: { url, name, query(sql, params), drop() }, or
 * { skipped: why } when the server does not answer (the case says so and measures the rest).
 */
export async function openBenchDatabase() {
  let admin;
  try {
    admin = await connect(POSTGRES_URL);
  } catch (err) {
    return { skipped: `PostgreSQL not reachable at ${masked(POSTGRES_URL)} (${err.message})` };
  }
  const name = `kiln_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  let client = null;
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
    const u = new URL(POSTGRES_URL);
    u.pathname = `/${name}`;
    const url = u.toString();
    client = await connect(url);
    let dropped = false;
    return {
      url,
      name,
      server: (await admin.query('SHOW server_version')).rows[0].server_version,
      settings: Object.fromEntries((await admin.query(`SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', 'max_connections', 'autovacuum')`)).rows.map((r) => [r.name, r.setting])),
      /** A statement on the bench database (its own connection, kept open). */
      query: (sql, params) => client.query(sql, params),
      /** The database URL with kiln's `?schema=` and a connection application_name (to find its server processes). */
      schemaUrl(schema, appName) {
        const s = new URL(url);
        s.searchParams.set('schema', schema);
        if (appName) s.searchParams.set('application_name', appName);
        return s.toString();
      },
      async drop() {
        if (dropped) return;
        dropped = true;
        await client.end().catch(() => {});
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.end().catch(() => {});
      },
    };
  } catch (err) {
    await client?.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
    throw err;
  }
}

/**
 * The raw costs on this server, from one node-postgres connection, one statement at a time:
 * a round trip (`SELECT 1`) and a committed one-row INSERT (autocommit: the COMMIT waits for
 * the WAL to reach the disk when synchronous_commit is on). Medians and p90 in ms.
 */
export async function rawLatency(db, { roundTrips = 300, commits = 150 } = {}) {
  const client = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  await client.connect();
  const time = async (n, fn) => {
    const ms = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn(i);
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    return { median: ms[Math.floor(ms.length / 2)], p90: ms[Math.floor(ms.length * 0.9)], n };
  };
  try {
    await client.query('CREATE TABLE IF NOT EXISTS public.bench_raw (id int primary key, at bigint)');
    await time(20, () => client.query('SELECT 1')); // warm-up
    const roundTrip = await time(roundTrips, () => client.query('SELECT 1'));
    const commit = await time(commits, (i) => client.query('INSERT INTO public.bench_raw VALUES ($1, $2)', [i, Date.now()]));
    return { roundTripMs: roundTrip, commitMs: commit };
  } finally {
    await client.query('DROP TABLE IF EXISTS public.bench_raw').catch(() => {});
    await client.end().catch(() => {});
  }
}


/**
 * The CPU of the PostgreSQL server processes (backends) serving connections named `appName`:
 * sample() reads them (pg_stat_activity, then /proc) and keeps the last figure per backend, so
 * a backend that ends between samples is counted up to its last sample. totalMs() is the sum
 * since start() (each backend's first sample counts from its own start when it was new).
 */
export function backendCpu(db, appName) {
  const first = new Map();
  const last = new Map();
  let known = null;
  return {
    /** Call before the work: backends already open count from here. */
    async start() {
      known = new Set();
      for (const pid of await pids()) {
        known.add(pid);
        const ms = procCpuMs(pid);
        first.set(pid, ms);
        last.set(pid, ms);
      }
    },
    async sample() {
      for (const pid of await pids()) {
        const ms = procCpuMs(pid);
        if (!first.has(pid)) first.set(pid, 0);
        if (ms > 0) last.set(pid, ms);
      }
    },
    totalMs() {
      let sum = 0;
      for (const [pid, ms] of last) sum += ms - (first.get(pid) ?? 0);
      return sum;
    },
    backends: () => last.size,
  };
  async function pids() {
    return (await db.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [appName])).rows.map((r) => r.pid);
  }
}

/**
 * What the server processes serving connections named `appName` are doing, sampled every
 * `everyMs` from pg_stat_activity until stop(). Per sample, each state seen in at least one of
 * them counts once: 'IO:WALSync' (a COMMIT waiting for the WAL to reach the disk),
 * 'Lock:transactionid' or 'Lock:tuple' (waiting for a row another transaction holds),
 * 'running' (a statement on the CPU), 'idle in transaction' (inside a transaction, waiting for
 * kiln's next statement); 'all idle' when every one of them waits for kiln (no transaction
 * open, nothing running). So a state's share is the share of the time (of samples) in which
 * at least one connection was in it; shares may add up to more than 100%.
 */
export function waitSampler(db, appName, everyMs = 25) {
  const counts = {};
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await db.query('SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = $1', [appName]).catch(() => ({ rows: null }));
      if (rows !== null) {
        samples++;
        const seen = new Set();
        for (const r of rows) {
          if (r.state === 'idle') continue;
          seen.add(r.state === 'active' ? (r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : 'running') : (r.state ?? 'unknown'));
        }
        if (seen.size === 0) seen.add('all idle');
        for (const k of seen) counts[k] = (counts[k] ?? 0) + 1;
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { samples, counts };
    },
  };
}

/** Adds wait-sample counts into `into` (the sum over repetitions). */
export function addWaits(into, w) {
  into.samples = (into.samples ?? 0) + w.samples;
  into.counts ??= {};
  for (const [k, n] of Object.entries(w.counts)) into.counts[k] = (into.counts[k] ?? 0) + n;
  return into;
}

/** "IO:WALSync 41%, all idle 30%, ..." from wait samples (share of samples with the state). */
export function describeWaits(w, top = 6) {
  if (!w?.samples) return 'n/a';
  return Object.entries(w.counts).sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, n]) => `${k} ${((n / w.samples) * 100).toFixed(0)}%`).join(', ');
}

/** The environment kiln's CLI runs with here: the bench's, without any KILN_* setting, plus `extra`. */
export function cliEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KILN_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs `kiln <args>` to completion; rejects unless it exits 0. */
export function runKiln(args, { cwd, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`kiln ${args.join(' ')} exited ${code}: ${out.trim().split('\n').slice(-5).join(' | ')}`))));
  });
}

/**
 * `count` `kiln scheduler --executor <executor> --exit-when-idle` processes (dist/ CLI), as a
 * user starts them: each in a folder of its own under `dir` (its logs), KILN_DATABASE_URL and
 * KILN_DAGS_FOLDER in the environment, nothing else of kiln's. Each runs with the round-trip
 * counter preloaded (its counts and resource usage land in <its folder>/pg-count.json at exit)
 * and, with `cpuProfDir`, under `node --cpu-prof`. Returns { schedulers, exited } at once:
 * `exited` resolves when every one has exited ([{ name, pid, code, exitedAt, counts, output }]).
 */
export function startSchedulers({ count, databaseUrl, dagsFolder, dir, executor = 'thread', cpuProfDir = null, extraEnv = {}, timeoutMs = 300_000 }) {
  const schedulers = [];
  for (let i = 1; i <= count; i++) {
    const name = `s${i}`;
    const cwd = join(dir, name);
    mkdirSync(cwd, { recursive: true });
    const countFile = join(cwd, 'pg-count.json');
    const flags = ['--import', PG_COUNT, ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, name)}`] : [])];
    const env = cliEnv({ KILN_DATABASE_URL: databaseUrl, KILN_DAGS_FOLDER: dagsFolder, BENCH_PG_COUNT_FILE: countFile, ...extraEnv });
    const child = spawn(process.execPath, [...flags, CLI, 'scheduler', '--executor', executor, '--exit-when-idle'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    alive.add(child);
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      alive.delete(child);
      let counts = null;
      try {
        counts = JSON.parse(readFileSync(countFile, 'utf8'));
      } catch {}
      resolve({ name, pid: child.pid, code: code ?? signal, exitedAt: Date.now(), counts, output: () => output, cpuProfDir: cpuProfDir ? join(cpuProfDir, name) : null });
    }));
    schedulers.push({ name, pid: child.pid, child, exited, output: () => output });
  }
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      for (const s of schedulers) killTree(s.pid, 'SIGKILL');
      reject(new Error(`the schedulers did not exit within ${timeoutMs / 1000} s: ${schedulers.map((s) => `${s.name}: ${s.output().trim().split('\n').slice(-2).join(' | ')}`).join('; ')}`));
    }, timeoutMs);
  });
  const all = Promise.all(schedulers.map((s) => s.exited));
  return {
    schedulers,
    exited: Promise.race([all, timeout]).finally(() => clearTimeout(timer)),
    kill() {
      for (const s of schedulers) if (s.child.exitCode === null && s.child.signalCode === null) killTree(s.pid, 'SIGKILL');
    },
  };
}

/** The main thread's .cpuprofile a `--cpu-prof` process wrote in `dir` (node names it CPU.<date>.<time>.<pid>.<thread 0>.<seq>.cpuprofile). */
export function mainThreadProfile(dir, pid) {
  try {
    const files = readdirSync(dir).filter((f) => f.includes(`.${pid}.0.`) && f.endsWith('.cpuprofile'));
    return files.length > 0 ? join(dir, files[0]) : null;
  } catch {
    return null;
  }
}

/** A process and its children: SIGKILL for what would not stop. */
function killTree(pid, signal) {
  const r = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  for (const child of (r.stdout ?? '').split('\n').map((s) => Number(s.trim())).filter((n) => n > 0)) killTree(child, signal);
  try {
    process.kill(pid, signal);
  } catch {}
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
