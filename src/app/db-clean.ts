/**
 * Retention: deletes finished runs (success or failed) that ended before a cutoff, with their
 * task instances, XComs and log folders. `kiln db clean` calls it once; the scheduler, when
 * `retention` is set, calls it at start and then periodically (RetentionCleaner).
 *
 * The database work goes in batches of `batchSize` runs, one short transaction each, with a
 * pause between batches as long as the batch took: SQLite has a single writer, and a
 * scheduler waiting for the write lock must never wait for more than one batch. Queued and
 * running runs are never selected (see Store.deleteExpiredRuns). Log folders are removed
 * after their rows are gone, so a failed transaction leaves the logs of the runs it kept.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KilnConfig } from '../config/load.js';
import { errorMessage } from '../errors.js';
import type { LogLevel } from '../scheduler/scheduler.js';
import { runLogFolder } from '../scheduler/task-work.js';
import type { ExpiredRun, ExpiredRunBatch, ExpiredRunPage, Store } from '../store/types.js';

export const DEFAULT_CLEAN_BATCH_SIZE = 500;
/**
 * Task instances one delete transaction may take, so runs of DAGs with thousands of tasks
 * go fewer to a batch. Measured on a 2-core machine at load 6-11: 500 runs of 12 tasks
 * (6,000 task instances and 6,000 XComs) took a median 28-70 ms, at most 166 ms, on SQLite;
 * a median 126 ms on PostgreSQL (which locks only the rows it deletes).
 */
export const DEFAULT_CLEAN_TI_BUDGET = 10_000;
/** The least pause between two batches. */
const MIN_PAUSE_MS = 5;
/** A report keeps the first this many log errors. */
const MAX_ERRORS_KEPT = 10;

export interface CleanOptions {
  /** Runs that ended more than this long before `now` go. */
  olderThanMs: number;
  /** Count what would go, delete nothing. */
  dryRun?: boolean;
  now?: number;
  /** Most runs per transaction. */
  batchSize?: number;
  /** Most task instances per transaction (a batch holds at least one run). */
  taskInstanceBudget?: number;
  /** Checked between batches: a scheduler shutting down stops the clean after the current one. */
  signal?: AbortSignal;
}

/** What a clean deleted (or, with dryRun, would delete). `kiln db clean --json` prints it. */
export interface CleanReport {
  dryRun: boolean;
  /** Epoch ms: runs that ended before this went. */
  endedBefore: number;
  runs: number;
  taskInstances: number;
  xcoms: number;
  logFiles: number;
  logBytes: number;
  /** Log folders that could not be read or removed, the first few (their rows are gone all the same). */
  logErrors: string[];
}

export async function cleanDatabase(store: Store, config: Pick<KilnConfig, 'logsFolder'>, options: CleanOptions): Promise<CleanReport> {
  const batchSize = options.batchSize ?? DEFAULT_CLEAN_BATCH_SIZE;
  const dryRun = options.dryRun ?? false;
  const report: CleanReport = {
    dryRun,
    endedBefore: (options.now ?? Date.now()) - options.olderThanMs,
    runs: 0,
    taskInstances: 0,
    xcoms: 0,
    logFiles: 0,
    logBytes: 0,
    logErrors: [],
  };
  const tiBudget = options.taskInstanceBudget ?? DEFAULT_CLEAN_TI_BUDGET;
  let after: ExpiredRun | undefined;
  for (;;) {
    const startedAt = performance.now();
    const batch = dryRun
      ? await store.findExpiredRuns(report.endedBefore, batchSize, after)
      : await deleteBatch(store, report.endedBefore, batchSize, tiBudget);
    const batchMs = performance.now() - startedAt;
    report.runs += batch.runs.length;
    report.taskInstances += batch.taskInstances;
    report.xcoms += batch.xcoms;
    for (const run of batch.runs) await cleanLogs(runLogFolder(config.logsFolder, run.dagId, run.runId), dryRun, report);
    // Reading pages ends at a short page. Deleting goes on until a batch finds nothing: on
    // PostgreSQL a batch may come back short because it skipped a run someone else held.
    if (batch.runs.length === 0 || (dryRun && batch.runs.length < batchSize)) break;
    after = batch.runs.at(-1);
    if (options.signal?.aborted) break;
    await delay(Math.max(MIN_PAUSE_MS, batchMs));
    if (options.signal?.aborted) break;
  }
  return report;
}

/**
 * Deletes the next batch. A read first (it takes no write lock) sizes the transaction by
 * task instances as well as by runs: a DAG with thousands of tasks gets fewer runs a batch.
 */
async function deleteBatch(store: Store, endedBefore: number, maxRuns: number, tiBudget: number): Promise<ExpiredRunBatch> {
  const page = await store.findExpiredRuns(endedBefore, maxRuns);
  if (page.runs.length === 0) return { runs: [], taskInstances: 0, xcoms: 0 };
  return store.deleteExpiredRuns(endedBefore, runsWithin(page, tiBudget));
}

/** How many of the page's runs, oldest first, fit in `budget` task instances (at least one). */
function runsWithin(page: ExpiredRunPage, budget: number): number {
  let taskInstances = 0;
  let n = 0;
  for (const run of page.runs) {
    taskInstances += run.taskInstances;
    if (n > 0 && taskInstances > budget) break;
    n += 1;
  }
  return Math.max(1, n);
}

/** One line for the terminal or the scheduler log: what went (or would go). */
export function describeClean(r: CleanReport): string {
  const what = `${plural(r.runs, 'run')}, ${plural(r.taskInstances, 'task instance')}, ${plural(r.xcoms, 'XCom')}, ${plural(r.logFiles, 'log file')} (${formatBytes(r.logBytes)})`;
  const errors = r.logErrors.length > 0 ? `; ${plural(r.logErrors.length, 'log folder')} could not be removed: ${r.logErrors[0]}` : '';
  return `${r.dryRun ? 'would delete' : 'deleted'} ${what} of runs that ended before ${new Date(r.endedBefore).toISOString()}${errors}`;
}

/** How often the scheduler cleans: hourly, or as often as the retention itself when shorter (at least every second). */
export function retentionIntervalMs(retentionMs: number): number {
  return Math.min(3_600_000, Math.max(1_000, retentionMs));
}

/**
 * The scheduler's own clean: one pass at start(), then one every retentionIntervalMs after
 * the previous pass ended, so passes never overlap. Several schedulers may clean the same
 * database at once (Store.deleteExpiredRuns takes disjoint batches on PostgreSQL; SQLite
 * serializes them). A failed pass is logged and tried again at the next interval.
 */
export class RetentionCleaner {
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly store: Store,
    private readonly config: Pick<KilnConfig, 'logsFolder'> & { retentionMs: number },
    private readonly log: (level: LogLevel, message: string) => void,
  ) {}

  start(): void {
    if (this.stopped || this.pass !== null) return;
    this.pass = this.runPass();
  }

  /** Stops the timer; a pass under way ends after its current batch. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.timer !== null) clearTimeout(this.timer);
    await this.pass;
  }

  private async runPass(): Promise<void> {
    try {
      const report = await cleanDatabase(this.store, this.config, { olderThanMs: this.config.retentionMs, signal: this.abort.signal });
      if (report.runs > 0) this.log('info', `retention: ${describeClean(report)}`);
      else if (report.logErrors.length > 0) this.log('warn', `retention: ${describeClean(report)}`);
    } catch (err) {
      this.log('warn', `retention: cleaning the database failed: ${errorMessage(err)}`);
    } finally {
      this.pass = null;
      if (!this.stopped) {
        this.timer = setTimeout(() => this.start(), retentionIntervalMs(this.config.retentionMs));
        this.timer.unref();
      }
    }
  }
}

/** Counts the files under `folder` and, unless dryRun, removes it; a missing folder counts nothing. */
async function cleanLogs(folder: string, dryRun: boolean, report: CleanReport): Promise<void> {
  try {
    const { files, bytes } = await measure(folder);
    if (!dryRun) await rm(folder, { recursive: true, force: true });
    report.logFiles += files;
    report.logBytes += bytes;
  } catch (err) {
    if (report.logErrors.length < MAX_ERRORS_KEPT) report.logErrors.push(`${folder}: ${errorMessage(err)}`);
  }
}

async function measure(folder: string): Promise<{ files: number; bytes: number }> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { files: 0, bytes: 0 };
    throw err;
  }
  let files = 0;
  let bytes = 0;
  for (const e of entries) {
    const path = join(folder, e.name);
    if (e.isDirectory()) {
      const sub = await measure(path);
      files += sub.files;
      bytes += sub.bytes;
    } else {
      files += 1;
      bytes += (await lstat(path)).size;
    }
  }
  return { files, bytes };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
