/**
 * A SQLite database that can no longer be written: a full disk (a 2 MiB tmpfs holding only
 * the database; logs elsewhere) filled by a run's XCom values while it runs, and a read-only
 * database file. The scheduler and `kiln dags test` must stop with an error naming the file
 * and the cause, stop their running tries, exit non-zero, and leave the database intact
 * (PRAGMA integrity_check says ok). Needs root for mount and chattr: skipped with a notice
 * where they fail.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runKiln } from '../helpers/cli.js';
import { exitOf, FIXTURES, readRecords, startScheduler, until } from '../fixtures/scheduler/harness.js';

const base = mkdtempSync(join(tmpdir(), 'kiln-unwritable-'));
const smallDisk = join(base, 'disk');
mkdirSync(smallDisk);
const mounted = tryRun('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', smallDisk]);
if (!mounted.ok) console.warn(`cannot mount a small tmpfs (${mounted.error}): skipping the full-disk tests`);

afterAll(() => {
  if (mounted.ok) tryRun('umount', [smallDisk]);
  rmSync(base, { recursive: true, force: true });
});

function tryRun(cmd: string, args: string[]): { ok: true } | { ok: false; error: string } {
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: ((err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message) };
  }
}

/** A project whose database is `dbFile` and whose logs are elsewhere; the `fill` DAG's side file. */
function project(name: string, dbFile: string) {
  const cwd = join(base, name);
  mkdirSync(cwd);
  const sideFile = join(cwd, 'side.jsonl');
  const env = {
    KILN_DATABASE_URL: `sqlite:${dbFile}`, KILN_LOGS_FOLDER: join(cwd, 'logs'), KILN_DAGS_FOLDER: join(FIXTURES, 'disk'),
    KILN_SCHEDULER_INTERVAL: '100ms', KILN_PARALLELISM: '8',
  };
  return { cwd, env, sideFile, params: JSON.stringify({ sideFile }) };
}

function integrity(dbFile: string): string {
  const db = new Database(dbFile);
  try {
    return (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

/** The `long` task's runner process (it records its pid) is gone. */
async function longTaskStopped(sideFile: string): Promise<void> {
  const [long] = readRecords<{ task: string; pid: number }>(sideFile).filter((r) => r.task === 'long');
  expect(long, 'the long task ran').toBeDefined();
  await until(() => {
    try {
      process.kill(long!.pid, 0);
      return false;
    } catch {
      return true;
    }
  }, `the long task's process ${long!.pid} to be gone`, 15_000);
}

function emptySmallDisk(): void {
  for (const f of readdirSync(smallDisk)) rmSync(join(smallDisk, f), { force: true });
}

describe.skipIf(!mounted.ok)('SQLite on a full disk', () => {
  const dbFile = join(smallDisk, 'kiln.db');

  it('the scheduler stops with an error naming the file, stops its running tries, exits 1, and the database stays intact', async () => {
    emptySmallDisk();
    const { cwd, env, sideFile, params } = project('scheduler-full', dbFile);
    expect((await runKiln(['db', 'migrate'], { cwd, env })).code).toBe(0);
    const trigger = await runKiln(['dags', 'trigger', 'fill', '--params', params], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const started = Date.now();
    const scheduler = startScheduler(['--executor', 'process'], { cwd, env });
    const { code } = await exitOf(scheduler, 50_000);
    const out = scheduler.output();
    expect(code, out).toBe(1);
    expect(out).toContain(`writing to the database failed: SQLite database ${dbFile}: database or disk is full (SQLITE_FULL); stopping`);
    // It did not wait for the minute-long task: that try was stopped.
    expect(Date.now() - started).toBeLessThan(50_000);
    await longTaskStopped(sideFile);
    expect(integrity(dbFile)).toBe('ok');
  }, 90_000);

  it('kiln dags test stops with an error naming the file, stops its running tries, exits 1, and the database stays intact', async () => {
    emptySmallDisk();
    const { cwd, env, sideFile, params } = project('dags-test-full', dbFile);
    expect((await runKiln(['db', 'migrate'], { cwd, env })).code).toBe(0);
    const res = await runKiln(['dags', 'test', 'fill', '--executor', 'process', '--params', params], { cwd, env, timeoutMs: 50_000 });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain(`kiln: SQLite database ${dbFile}: database or disk is full (SQLITE_FULL)`);
    await longTaskStopped(sideFile);
    expect(integrity(dbFile)).toBe('ok');
  }, 90_000);
});

describe('a read-only SQLite database file', () => {
  const dir = join(base, 'readonly');
  mkdirSync(dir);
  const dbFile = join(dir, 'kiln.db');

  it('the scheduler and kiln dags test stop at once with an error naming the file, exit 1, and the database stays intact', async (ctx) => {
    const { cwd, env, params } = project('readonly-project', dbFile);
    expect((await runKiln(['db', 'migrate'], { cwd, env })).code).toBe(0);
    // chmod alone does not stop root; an immutable file does (and is undone below).
    chmodSync(dbFile, 0o444);
    const immutable = process.getuid?.() === 0 ? tryRun('chattr', ['+i', dbFile]) : ({ ok: false, error: 'not root' } as const);
    try {
      let writable = true;
      try {
        closeSync(openSync(dbFile, 'r+'));
      } catch {
        writable = false;
      }
      if (writable) {
        console.warn(`cannot make ${dbFile} read-only (${immutable.ok ? 'still writable' : immutable.error}): skipping the read-only test`);
        ctx.skip();
      }
      const cause = `SQLite database ${dbFile}: attempt to write a readonly database (SQLITE_READONLY)`;
      const test = await runKiln(['dags', 'test', 'fill', '--executor', 'process', '--params', params], { cwd, env });
      expect(test.code, test.stderr).toBe(1);
      expect(test.stderr).toContain(`kiln: ${cause}`);

      const scheduler = startScheduler(['--executor', 'process'], { cwd, env });
      const { code } = await exitOf(scheduler, 30_000);
      expect(code, scheduler.output()).toBe(1);
      expect(scheduler.output()).toContain(cause);
    } finally {
      if (immutable.ok) tryRun('chattr', ['-i', dbFile]);
      for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644); // the -wal and -shm files SQLite made read-only too
    }
    expect(existsSync(dbFile)).toBe(true);
    expect(integrity(dbFile)).toBe('ok');
  }, 90_000);
});
