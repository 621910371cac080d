/**
 * The retention use case over a real (SQLite) store and a real logs folder: batches, the dry
 * run, log folders, and the scheduler's periodic cleaner. The store methods themselves are
 * covered on both dialects by test/store/retention.conformance.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanDatabase, describeClean, RetentionCleaner, retentionIntervalMs } from '../../src/app/db-clean.js';
import { runLogFolder, taskLogFile } from '../../src/scheduler/task-work.js';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { run, ti } from '../store/fixtures.js';

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

let dir: string;
let logsFolder: string;
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-db-clean-'));
  logsFolder = join(dir, 'logs');
  store = await createStore(`sqlite:${join(dir, 'kiln.db')}`);
  await store.migrate();
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A run with tasks a and b, an XCom for a, and a log file of `logBytes` bytes per try. */
async function seed(runId: string, state: 'success' | 'failed' | 'running' | 'queued', endedAt: number | null, logBytes = 10): Promise<void> {
  const tiState = state === 'success' || state === 'failed' ? 'success' : 'running';
  await store.createRun(run('etl', runId, { state, endedAt }), [ti('etl', runId, 'a', { state: tiState, tryNumber: 2 }), ti('etl', runId, 'b', { state: tiState, tryNumber: 1 })]);
  await store.write({ xcoms: [{ dagId: 'etl', runId, taskId: 'a', value: 1 }] });
  for (const [taskId, tries] of [['a', 2], ['b', 1]] as const) {
    for (let n = 1; n <= tries; n++) {
      const file = taskLogFile(logsFolder, 'etl', runId, taskId, n);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, 'x'.repeat(logBytes));
    }
  }
}

describe('cleanDatabase', () => {
  it('deletes old finished runs in batches with their rows and log folders; a dry run counts the same and deletes nothing', async () => {
    for (let i = 0; i < 5; i++) await seed(`old${i}`, i % 2 ? 'failed' : 'success', NOW - (40 + i) * DAY);
    await seed('recent', 'success', NOW - DAY);
    await seed('running', 'running', null);
    await seed('queued-old', 'queued', NOW - 50 * DAY);
    // A run whose tries never wrote a line has no log folder.
    await store.createRun(run('etl', 'silent', { state: 'success', endedAt: NOW - 41 * DAY }), [ti('etl', 'silent', 'a', { state: 'success', tryNumber: 1 })]);

    const expected = { endedBefore: NOW - 30 * DAY, runs: 6, taskInstances: 11, xcoms: 5, logFiles: 15, logBytes: 150, logErrors: [] };
    const dry = await cleanDatabase(store, { logsFolder }, { olderThanMs: 30 * DAY, now: NOW, dryRun: true, batchSize: 2 });
    expect(dry).toEqual({ dryRun: true, ...expected });
    expect(await store.listRuns()).toHaveLength(9);
    expect(existsSync(runLogFolder(logsFolder, 'etl', 'old0'))).toBe(true);

    const done = await cleanDatabase(store, { logsFolder }, { olderThanMs: 30 * DAY, now: NOW, batchSize: 2 });
    expect(done).toEqual({ dryRun: false, ...expected });
    expect((await store.listRuns()).map((r) => r.runId).sort()).toEqual(['queued-old', 'recent', 'running']);
    for (let i = 0; i < 5; i++) expect(existsSync(runLogFolder(logsFolder, 'etl', `old${i}`))).toBe(false);
    for (const kept of ['recent', 'running', 'queued-old']) expect(existsSync(taskLogFile(logsFolder, 'etl', kept, 'a', 2))).toBe(true);
    expect(describeClean(done)).toBe(`deleted 6 runs, 11 task instances, 5 XComs, 15 log files (150 B) of runs that ended before ${new Date(NOW - 30 * DAY).toISOString()}`);

    expect(await cleanDatabase(store, { logsFolder }, { olderThanMs: 30 * DAY, now: NOW })).toMatchObject({ runs: 0, taskInstances: 0, logFiles: 0 });
  });

  it('sizes each delete transaction by task instances as well as by runs', async () => {
    for (let i = 0; i < 5; i++) await seed(`old${i}`, 'success', NOW - (40 + i) * DAY);
    const limits: number[] = [];
    const spy: Store = Object.create(store, {
      deleteExpiredRuns: { value: (endedBefore: number, limit: number) => (limits.push(limit), store.deleteExpiredRuns(endedBefore, limit)) },
    });
    const report = await cleanDatabase(spy, { logsFolder }, { olderThanMs: 30 * DAY, now: NOW, taskInstanceBudget: 5 });
    expect(report).toMatchObject({ runs: 5, taskInstances: 10 });
    // Two task instances a run: two runs fit in 5; a lone run always goes.
    expect(limits).toEqual([2, 2, 1]);
    expect(await cleanDatabase(spy, { logsFolder }, { olderThanMs: 30 * DAY, now: NOW, taskInstanceBudget: 1 })).toMatchObject({ runs: 0 });
  });

  it('stops between batches once its signal aborts', async () => {
    for (let i = 0; i < 6; i++) await seed(`old${i}`, 'success', NOW - (40 + i) * DAY);
    const abort = new AbortController();
    const cleaning = cleanDatabase(store, { logsFolder }, { olderThanMs: 30 * DAY, now: NOW, batchSize: 2, signal: abort.signal });
    abort.abort();
    expect((await cleaning).runs).toBe(2);
    expect(await store.listRuns()).toHaveLength(4);
  });
});

describe('RetentionCleaner', () => {
  it('cleans at start, logs what it deleted, and stops', async () => {
    await seed('old', 'success', Date.now() - 40 * DAY, 2048);
    await seed('recent', 'success', Date.now());
    const lines: string[] = [];
    const cleaner = new RetentionCleaner(store, { logsFolder, retentionMs: 30 * DAY }, (level, message) => lines.push(`${level} ${message}`));
    cleaner.start();
    await cleaner.stop();
    expect(lines).toEqual([expect.stringMatching(/^info retention: deleted 1 run, 2 task instances, 1 XCom, 3 log files \(6\.0 KiB\) of runs that ended before /)]);
    expect((await store.listRuns()).map((r) => r.runId)).toEqual(['recent']);
  });

  it('says nothing when there is nothing to delete, and reports a failure as a warning', async () => {
    const lines: string[] = [];
    const cleaner = new RetentionCleaner(store, { logsFolder, retentionMs: 30 * DAY }, (level, message) => lines.push(`${level} ${message}`));
    cleaner.start();
    await cleaner.stop();
    expect(lines).toEqual([]);
    await store.close();
    const broken = new RetentionCleaner(store, { logsFolder, retentionMs: 30 * DAY }, (level, message) => lines.push(`${level} ${message}`));
    broken.start();
    await broken.stop();
    expect(lines).toEqual([expect.stringMatching(/^warn retention: cleaning the database failed: /)]);
    store = await createStore(`sqlite:${join(dir, 'kiln.db')}`);
  });

  it('cleans hourly, or as often as a shorter retention (at least every second)', () => {
    expect(retentionIntervalMs(30 * DAY)).toBe(3_600_000);
    expect(retentionIntervalMs(10 * 60_000)).toBe(10 * 60_000);
    expect(retentionIntervalMs(10)).toBe(1_000);
  });
});
