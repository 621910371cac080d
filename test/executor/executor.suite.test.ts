/**
 * One suite, every isolation: each way a try can end, with the state, exit code, signal and
 * reason the 'finished' event must carry. Tests wait on events, never on the clock; the
 * task timeouts below are product behaviour under test, not sleeps.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KilnError } from '../../dist/src/errors.js';
import type { Isolation } from '../../dist/src/dag/types.js';
import { createHarness, fixturesDir, isGone, type Finished, type Harness } from './harness.js';

const KILL_GRACE_MS = 150;

describe.each(['thread', 'process', 'spawn'] as const)('executor: %s isolation', (isolation: Isolation) => {
  let h: Harness;
  let dir: string;
  const xcomCalls: string[][] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `kiln-executor-${isolation}-`));
    // Secrets the runners must not see, and a plain variable they must.
    process.env.KILN_DATABASE_URL = 'postgres://kiln:hunter2@db/kiln';
    process.env.KILN_PARALLELISM = '8';
    process.env.TEST_DB_PASSWORD = 'hunter2';
    process.env.TEST_GRANTED_TOKEN = 'tok-123';
    process.env.TEST_PLAIN_VALUE = 'visible';
    h = createHarness({
      isolation,
      logDir: join(dir, 'logs'),
      taskApi: {
        xcom: async (dagId, runId, taskId) => {
          xcomCalls.push([dagId, runId, taskId]);
          if (taskId === 'value') return { answer: 42 };
          throw new KilnError('TASK_NOT_FOUND', `no XCom for task '${taskId}'`);
        },
      },
      executor: { killGraceMs: KILL_GRACE_MS, heartbeatIntervalMs: 50, workerHeapLimitMb: 64 },
    });
    await h.executor.start();
  });

  afterAll(async () => {
    await h?.executor.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10 });
  });

  const expectFailed = (e: Finished, code: string, message: RegExp | string) => {
    expect(e.outcome).toBe('failed');
    expect(e.error?.code).toBe(code);
    expect(e.error?.message).toMatch(message);
  };

  it('runs a task and returns its value, after a started event', async () => {
    const { key, finished } = h.submit('value', { params: { day: '2026-01-01' } });
    const e = await finished;
    expect(e).toMatchObject({ outcome: 'success', noRetry: false, error: null, signal: null });
    expect(e.value).toEqual({ answer: 42, params: { day: '2026-01-01' }, tryNumber: 1, maxTries: 2 });
    expect(e.exitCode).toBe(isolation === 'spawn' ? 0 : null);
    expect(e.usage.peakRssBytes).toBeGreaterThan(0);
    expect(e.usage.cpuMs).toBeGreaterThanOrEqual(0);
    const types = h.eventsOf(key).filter((x) => x.type !== 'heartbeat').map((x) => x.type);
    expect(types).toEqual(['started', 'finished']);
    const started = h.eventsOf(key)[0] as Extract<typeof e | { type: 'started'; pid: number | null; threadId: number | null; isolation: string }, { type: 'started' }>;
    expect(started.isolation).toBe(isolation);
    expect(started.pid).toBeGreaterThan(0);
    if (isolation === 'thread') expect(started.threadId).toBeGreaterThan(0);
    else expect(started.pid).not.toBe(process.pid);
  });

  it('fails a task that throws, with its message', async () => {
    const e = await h.run('throws');
    expectFailed(e, 'TASK_FAILED', 'boom from the task');
    expect(e.noRetry).toBe(false);
    expect(e.exitCode).toBe(isolation === 'spawn' ? 1 : null);
  });

  it('ctx.fail() fails without retry', async () => {
    const e = await h.run('fails');
    expectFailed(e, 'TASK_FAILED', 'the input is wrong, no point retrying');
    expect(e.noRetry).toBe(true);
  });

  it('ctx.skip() ends the try as skipped', async () => {
    const e = await h.run('skips');
    expect(e.outcome).toBe('skipped');
    expect(e.error?.message).toBe('nothing to do today');
    expect(e.exitCode).toBe(isolation === 'spawn' ? 0 : null);
  });

  it('process.exit(3) in a task fails it as WORKER_EXITED with exit code 3', async () => {
    const e = await h.run('exits');
    expectFailed(e, 'WORKER_EXITED', /exited with code 3 while the task was running/);
    expect(e.exitCode).toBe(3);
    expect(e.signal).toBeNull();
  });

  it('stops an endless loop at its timeout', async () => {
    const e = await h.run('loops', { timeoutMs: 300 });
    expectFailed(e, 'TASK_TIMEOUT', /timed out after 300 ms/);
    if (isolation === 'thread') expect(e.error?.message).toMatch(/thread was terminated/);
    else expect(e.signal).toBe('SIGTERM');
  });

  it('kills a long-lived grandchild with the task at timeout', async () => {
    const pidFile = join(dir, `grandchild-${isolation}.pid`);
    const e = await h.run('grandchild', { timeoutMs: 2000, params: { pidFile } });
    expectFailed(e, 'TASK_TIMEOUT', /timed out after 2000 ms/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    await vi.waitFor(() => expect(isGone(pid)).toBe(true), { timeout: 5000, interval: 20 });
  });

  it('reports heap exhaustion as out of memory', async () => {
    const e = await h.run('heap');
    expectFailed(e, 'WORKER_EXITED', /JavaScript heap out of memory \(heap limit 64 MB\)/);
    if (isolation === 'thread') expect(e.exitCode).toBe(1);
    else expect(e.signal).toBe('SIGABRT');
  });

  it.skipIf(isolation === 'thread')('reports SIGSEGV as a native crash', async () => {
    const e = await h.run('segfault');
    expectFailed(e, 'WORKER_EXITED', /crashed with SIGSEGV: a native crash/);
    expect(e.signal).toBe('SIGSEGV');
    expect(e.exitCode).toBeNull();
  });

  it('rejects a return value JSON cannot carry, naming the path', async () => {
    const date = await h.run('date');
    expectFailed(date, 'RESULT_NOT_SERIALIZABLE', '$.when (a Date instance)');
    const bigint = await h.run('bigint');
    expectFailed(bigint, 'RESULT_NOT_SERIALIZABLE', '$.rows[0].n (a bigint)');
  });

  it('fails the try on an unhandled rejection', async () => {
    const e = await h.run('rejection');
    expectFailed(e, 'TASK_FAILED', 'unhandled promise rejection: a promise nobody awaited');
  });

  it('fails a try whose task or DAG file cannot be found or imported', async () => {
    const missing = await h.run('nope');
    expectFailed(missing, 'TASK_NOT_FOUND', "DAG 'suite'");
    expect(missing.noRetry).toBe(true);
    const broken = await h.run('noop', { dagFile: join(fixturesDir, 'throws-at-import.mjs') });
    expectFailed(broken, 'DAG_IMPORT', 'the DAG file throws at import');
  });

  it('pulls XComs through taskApi', async () => {
    const { work, finished } = h.submit('xcom');
    const e = await finished;
    expect(e).toMatchObject({ outcome: 'success', value: 43 });
    expect(xcomCalls).toContainEqual(['suite', work.runId, 'value']);
    const missing = await h.run('xcom-missing');
    expectFailed(missing, 'TASK_NOT_FOUND', "no XCom for task 'nope'");
  });

  it('reports ctx.heartbeat() calls with their details', async () => {
    const { key, finished } = h.submit('heartbeats');
    expect((await finished).outcome).toBe('success');
    const beats = h.eventsOf(key).filter((x) => x.type === 'task-heartbeat').map((x) => (x as { details?: unknown }).details);
    expect(beats).toEqual([{ step: 1 }, { step: 2 }]);
  });

  it('counts a heartbeat promise from when the task starts, not from when its worker was asked', async () => {
    // 150 ms is about what a spawned runner needs to boot Node and import the DAG (more under load);
    // the task itself beats well within it.
    const e = await h.run('steady', { heartbeatTimeoutMs: 150 });
    expect(e, JSON.stringify(e.error)).toMatchObject({ outcome: 'success', value: 'kept' });
  });

  it('fails a task that promised heartbeats and sent none', async () => {
    const { key, finished } = h.submit('silent', { heartbeatTimeoutMs: 300 });
    const e = await finished;
    expectFailed(e, 'TASK_HEARTBEAT_TIMEOUT', /no heartbeat for 300 ms/);
    expect(h.logs.some((l) => l.key === key && l.line === 'promised heartbeats, sends none')).toBe(true);
  });

  it('cancel() aborts ctx.signal; the batched heartbeat covered the task while it ran', async () => {
    const { key, finished } = h.submit('cancellable');
    await h.next((e) => e.type === 'heartbeat' && e.keys.includes(key));
    await h.next((e) => e.type === 'task-heartbeat' && e.key === key);
    h.executor.cancel(key, 'the operator said so');
    const e = await finished;
    expectFailed(e, 'TASK_CANCELLED', 'cancelled: the operator said so');
    expect(e.noRetry).toBe(true);
    expect(e.signal).toBeNull(); // it ended on its own when ctx.signal aborted: no kill needed
  });

  it('keeps kiln secrets out of the task environment unless granted', async () => {
    const e = await h.run('env', { env: ['TEST_GRANTED_TOKEN'] });
    expect(e.value).toEqual({ database: null, kilnOther: null, password: null, granted: 'tok-123', plain: 'visible' });
    const again = await h.run('env');
    expect((again.value as { granted: unknown }).granted).toBeNull(); // the grant was for that try only
  });

  it('writes stdout, stderr and ctx.log of a try to its log file', async () => {
    const { key, work, finished } = h.submit('logs');
    expect((await finished).value).toBe('logged');
    const log = readFileSync(work.logFile!, 'utf8');
    expect(log).toContain('hello from stdout\n');
    expect(log).toContain('hello from stderr\n');
    expect(log).toMatch(/Z INFO {2}info line \{ n: 1 \}\n/);
    expect(log).toMatch(/Z WARN {2}warn line\n/);
    expect(h.logs.filter((l) => l.key === key).map((l) => [l.level, l.line])).toEqual([['info', 'info line { n: 1 }'], ['warn', 'warn line']]);
  });

  it('refuses work beyond its parallelism', async () => {
    const running = Array.from({ length: 4 }, () => h.submit('cancellable'));
    expect(h.executor.freeSlots()).toBe(0);
    expect(() => h.submit('noop')).toThrow(/no free slot/);
    for (const r of running) h.executor.cancel(r.key, 'test over');
    await Promise.all(running.map((r) => r.finished));
    expect(h.executor.freeSlots()).toBe(4);
  });

  it('after all that, runs 200 more tasks successfully (the pool healed)', async () => {
    const outcomes: string[] = [];
    let submitted = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (submitted < 200 && h.executor.freeSlots() > 0) {
          submitted++;
          void h.submit('value').finished.then((e) => {
            outcomes.push(e.outcome);
            if (outcomes.length === 200) resolve();
            else pump();
          });
        }
      };
      pump();
    });
    expect(outcomes.filter((o) => o === 'success')).toHaveLength(200);
  }, 180_000); // 200 spawned processes take ~8 s on a quiet machine, several times that on a loaded one

  it('stop() kills what still runs and still reports it finished', async () => {
    const { key, finished } = h.submit('loops');
    await h.next((e) => e.type === 'started' && e.key === key);
    await h.executor.stop({ drainMs: 0 });
    const e = await finished;
    expectFailed(e, 'TASK_CANCELLED', /kiln stopped before the task finished/);
    expect(() => h.submit('noop')).toThrow(/stopping/);
    // Over the whole suite: every try that started finished exactly once.
    const finishedKeys = h.events.flatMap((x) => (x.type === 'finished' ? [x.key] : []));
    const startedKeys = h.events.flatMap((x) => (x.type === 'started' ? [x.key] : []));
    expect(new Set(finishedKeys).size).toBe(finishedKeys.length);
    expect(startedKeys.every((k) => finishedKeys.includes(k))).toBe(true);
  });
});
