/**
 * What the soak reads from outside the scheduler, once a second: /proc for the scheduler
 * process and its child processes, and one cheap read of the metadata database.
 *
 * - Thread workers (piscina) and the DAG-parsing worker are threads of the scheduler
 *   process: their memory is in the scheduler's RSS. Child processes (the tinypool process
 *   workers, esbuild's service) are found through /proc/<pid>/task/<tid>/children of every
 *   thread of the scheduler, then their descendants, and summed apart.
 * - Progress is one COUNT of finished task instances, answered from the
 *   (state, last_heartbeat_at) index, and one GROUP BY over the runs' state index.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import pg from 'pg';

const require = createRequire(import.meta.url);
const FINISHED = `('success', 'failed', 'skipped', 'upstream_failed')`;
const FINISHED_RUNS = `SELECT run_id FROM dag_run WHERE state IN ('success', 'failed')`;
const CLOCK_TICKS_PER_SEC = clockTicks();

function clockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

function read(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** RSS (bytes), threads, and CPU time (user + system, ms) of one process; null once it is gone. */
export function processStats(pid) {
  const status = read(`/proc/${pid}/status`);
  const stat = read(`/proc/${pid}/stat`);
  if (status === null || stat === null) return null;
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  // The fields after the command name, which may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return { rssBytes: rssKb * 1024, threads, cpuMs: (cpuTicks * 1000) / CLOCK_TICKS_PER_SEC };
}

export function openFdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Direct children of every thread of `pid` (a process may fork from any of its threads). */
function childPids(pid) {
  const out = [];
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const list = read(`/proc/${pid}/task/${tid}/children`)?.trim();
    if (list) out.push(...list.split(' ').map(Number));
  }
  return out;
}

/** What a child process is, from its command line. */
function kindOf(pid) {
  const argv = (read(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean);
  const script = argv.find((a, i) => i > 0 && !a.startsWith('-')) ?? argv[0] ?? '';
  if (/esbuild/.test(argv[0] ?? '') || /esbuild/.test(script)) return 'esbuild';
  if (/tinypool|workers\/process/.test(script)) return 'process worker';
  if (/workers\/spawn|tasks run/.test(argv.join(' '))) return 'spawned task';
  return basename(script) || '(exiting)'; // an exited, not yet reaped child has no command line
}

/** Every descendant process of `pid`: count, summed RSS, a count by kind, and each one's CPU. */
export function descendantStats(pid) {
  const seen = new Set();
  const stack = childPids(pid);
  let rssBytes = 0;
  const byKind = {};
  const cpuByPid = new Map();
  while (stack.length > 0) {
    const p = stack.pop();
    if (seen.has(p)) continue;
    seen.add(p);
    const s = processStats(p);
    if (s === null) continue;
    const kind = kindOf(p);
    rssBytes += s.rssBytes;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    cpuByPid.set(p, s.cpuMs);
    stack.push(...childPids(p));
  }
  return { count: cpuByPid.size, rssBytes, byKind, cpuByPid };
}

/**
 * CPU time of a changing set of processes, accumulated: worker processes are replaced and
 * database backends reconnect, so the sum over the living ones can go down. Each sample adds
 * what every process known before gained since, and all of a new one's time.
 */
export function cpuAccumulator() {
  let last = new Map();
  let totalMs = 0;
  return (cpuByPid) => {
    for (const [pid, ms] of cpuByPid) totalMs += Math.max(0, ms - (last.get(pid) ?? 0));
    last = cpuByPid;
    return totalMs;
  };
}

/** CPU (ms) of each of these processes that is still alive. */
export function cpuOf(pids) {
  const out = new Map();
  for (const pid of pids) {
    const s = processStats(pid);
    if (s !== null) out.set(pid, s.cpuMs);
  }
  return out;
}

/** Busy and total CPU time of the whole machine (ms, all cores), from /proc/stat. */
export function machineCpu() {
  const line = read('/proc/stat')?.split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busyMs: ((total - idle) * 1000) / CLOCK_TICKS_PER_SEC, totalMs: (total * 1000) / CLOCK_TICKS_PER_SEC };
}

/**
 * The per-try log folder's size (blocks on disk, directories included, as `du` counts them),
 * its files and the bytes they hold, measured without walking 200,000 entries each time: a
 * run's folder (<logs>/<dag>/<run>, named as kiln's runLogFolder() names it) is walked until
 * its run has finished, then remembered. A finished run's logs are complete: a try's log is
 * closed before the try's outcome is recorded. (A full `du` every few seconds slowed the
 * machine more as the folder grew, the very trend the soak looks for; promise-based fs calls
 * cost the harness a third of a core at 1,300 task instances/s, synchronous ones a few %.)
 */
export function logFolderMeter(logsFolder, dagId) {
  const sealed = new Map();
  const dagDir = join(logsFolder, safeSegment(dagId));
  return (finishedRunIds) => {
    const finished = new Set([...finishedRunIds].map(safeSegment));
    const total = { diskBytes: 0, inodes: 0, files: 0, fileBytes: 0 };
    for (const dir of [logsFolder, dagDir]) {
      const st = lstatOrNull(dir);
      if (st === null) continue;
      total.diskBytes += st.blocks * 512;
      total.inodes++;
    }
    for (const name of readdirOrEmpty(dagDir)) {
      let m = sealed.get(name);
      if (m === undefined) {
        const runFinished = finished.has(name); // read before the walk: nothing is added after
        m = measureTree(join(dagDir, name));
        if (runFinished) sealed.set(name, m);
      }
      for (const k of Object.keys(total)) total[k] += m[k];
    }
    return total;
  };
}

/** kiln's runLogFolder() segment rule (src/scheduler/task-work.ts). */
const safeSegment = (segment) => segment.replace(/[^A-Za-z0-9_.-]/g, '_');

function lstatOrNull(path) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

function readdirOrEmpty(path) {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** Blocks on disk, inodes, files and file bytes under `dir`, itself included. */
export function measureTree(dir) {
  const out = { diskBytes: 0, inodes: 0, files: 0, fileBytes: 0 };
  const walk = (path) => {
    const st = lstatOrNull(path);
    if (st === null) return;
    out.diskBytes += st.blocks * 512;
    out.inodes++;
    if (st.isFile()) {
      out.files++;
      out.fileBytes += st.size;
    } else if (st.isDirectory()) {
      for (const e of readdirOrEmpty(path)) walk(join(path, e));
    }
  };
  walk(dir);
  return out;
}

/**
 * The database side: progress, run states and size, read through its own connection.
 * SQLite: the file plus -wal and -shm. PostgreSQL: pg_total_relation_size (tables with their
 * indexes and TOAST) summed over the soak's schema.
 */
export async function openDbProbe(project) {
  return project.db === 'sqlite' ? sqliteProbe(project.dbFile) : postgresProbe(project);
}

function sqliteProbe(file) {
  let db = null;
  const Database = require('better-sqlite3');
  const size = () => {
    const s = (suffix) => (existsSync(file + suffix) ? statSync(file + suffix).size : 0);
    const main = s('');
    const wal = s('-wal');
    const shm = s('-shm');
    return { bytes: main + wal + shm, mainBytes: main, walBytes: wal, shmBytes: shm };
  };
  const open = () => {
    if (db === null && existsSync(file)) {
      db = new Database(file, { fileMustExist: true });
      db.pragma('busy_timeout = 5000');
    }
    return db;
  };
  const all = (sql) => open()?.prepare(sql).all() ?? [];
  return {
    size: async () => size(),
    progress: async () => progressFrom(all(`SELECT COUNT(*) AS n FROM task_instance WHERE state IN ${FINISHED}`), all('SELECT state, COUNT(*) AS n FROM dag_run GROUP BY state')),
    finishedRunIds: async () => all(FINISHED_RUNS).map((r) => r.run_id),
    serverPids: async () => [],
    activeQueries: async () => [],
    tableStats: async () => [],
    query: async (sql) => all(sql),
    close: async () => db?.close(),
  };
}

async function postgresProbe(project) {
  const client = new pg.Client({ connectionString: project.postgresUrl, options: `-c search_path=${project.schema}` });
  client.on('error', () => {});
  await client.connect();
  const all = async (sql, params = []) => (await client.query(sql, params)).rows;
  return {
    size: async () => {
      const [row] = await all(
        `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint AS bytes,
                COALESCE(SUM(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname = 'task_instance'), 0)::bigint AS ti_bytes
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r'`,
        [project.schema],
      );
      return { bytes: Number(row.bytes), taskInstanceBytes: Number(row.ti_bytes) };
    },
    progress: async () => progressFrom(await all(`SELECT COUNT(*) AS n FROM task_instance WHERE state IN ${FINISHED}`), await all('SELECT state, COUNT(*) AS n FROM dag_run GROUP BY state')),
    finishedRunIds: async () => (await all(FINISHED_RUNS)).map((r) => r.run_id),
    /** The server processes (backends) of kiln's connections; the probe's own carry no name. */
    serverPids: async () => (await all('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [project.appName])).map((r) => Number(r.pid)),
    /** The statements kiln's backends are executing right now (a sampling profile of SQL). */
    activeQueries: async () => (await all(`SELECT query FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'`, [project.appName])).map((r) => r.query),
    /** Scans, rows read, updates (HOT or not) and vacuums per table of the soak's schema. */
    tableStats: async () =>
      (await all(
        `SELECT relname AS table, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count, autoanalyze_count
           FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname`,
        [project.schema],
      )).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === 'table' ? v : Number(v)]))),
    query: (sql) => all(sql),
    close: () => client.end().catch(() => {}),
  };
}

function progressFrom(countRows, runRows) {
  const runs = { queued: 0, running: 0, success: 0, failed: 0 };
  for (const r of runRows) runs[r.state] = Number(r.n);
  return { finishedTis: Number(countRows[0]?.n ?? 0), runs };
}
