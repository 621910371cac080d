/**
 * `kiln backfill <dag-id> --from --to`: one run of type backfill per logical date of the
 * range (see scheduler/backfill.ts for the rules). By default this process drives the runs
 * to completion, at most --max-active-runs at once, with its own warm executor (like `dags
 * test`); with --queue it only stores the backfill, makes its first runs and leaves the rest
 * to the schedulers. --dry-run prints what would happen and changes nothing.
 */
import type { KilnConfig } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { advanceBackfill, backfillDates, dateAction, runsByDate, type Reprocess } from '../scheduler/backfill.js';
import { describeCallbackFailure } from '../scheduler/callbacks.js';
import { resolveRunParams } from '../scheduler/params-schema.js';
import { loadRunState } from '../scheduler/run-loading.js';
import type { RunState } from '../scheduler/run-state.js';
import { StoreOutage } from '../scheduler/store-outage.js';
import { createStore } from '../store/index.js';
import type { BackfillRow, TiRow } from '../store/types.js';
import { openKilnContext } from './context.js';
import { dagSourcesFolder, findDag, type FoundDag } from './dag-files.js';

export interface BackfillOptions {
  from: number;
  to: number;
  reprocess?: Reprocess;
  /** Default: the DAG's maxActiveRuns. */
  maxActiveRuns?: number;
  backwards?: boolean;
  dryRun?: boolean;
  /** Only store the backfill and queue its first runs: the schedulers drive it. */
  queue?: boolean;
  params?: Record<string, unknown>;
  cwd?: string;
  /** Progress: a run started or ended, a date skipped, the database went away. */
  log?: (message: string) => void;
  onTaskChange?: (ti: TiRow) => void;
}

/** The `kiln backfill --json` document (part of the user-facing contract). */
export interface BackfillReport {
  dagId: string;
  /** null for a dry run. */
  backfillId: string | null;
  mode: 'dry-run' | 'queued' | 'driven';
  /** driven: success when every run it made succeeded; queued: queued; dry-run: planned. */
  state: 'success' | 'failed' | 'queued' | 'planned';
  maxActiveRuns: number;
  dates: Array<{
    logicalDate: string;
    /** What happens (dry run, or for dates whose turn has not come yet: what is expected). */
    action: 'create' | 'clear' | 'skip';
    runId: string;
    why?: string;
    /** The run's state at the end (driven), or now. */
    state?: string;
  }>;
}

export async function runBackfill(config: KilnConfig, dagId: string, options: BackfillOptions): Promise<BackfillReport> {
  const log = options.log ?? (() => {});
  const found = await findDag(dagId, { cwd: options.cwd ?? process.cwd(), dagsFolder: config.dagsFolder, parseTimeoutMs: config.parseTimeoutMs, sourcesDir: dagSourcesFolder(config) });
  const dates = backfillDates(found.dag, options.from, options.to, options.backwards);
  // Refused before anything is written: a bad value never leaves a run behind.
  const params = found.dag.paramsSchema == null ? (options.params ?? {}) : resolveRunParams(found.dag, options.params);
  const reprocess = options.reprocess ?? 'none';
  const maxActiveRuns = options.maxActiveRuns ?? found.dag.maxActiveRuns;
  const mode = options.dryRun ? 'dry-run' : options.queue ? 'queued' : 'driven';

  const store = await createStore(config.databaseUrl);
  let report: BackfillReport;
  try {
    await store.migrate();
    const existing = await runsByDate(store, found.dag.dagId, dates);
    report = {
      dagId: found.dag.dagId, backfillId: null, mode, state: options.dryRun ? 'planned' : 'queued', maxActiveRuns,
      dates: dates.map((d) => {
        const act = dateAction(d, existing.get(d), reprocess);
        return { logicalDate: new Date(d).toISOString(), action: act.action, runId: act.runId, ...(act.action === 'skip' ? { why: act.why } : {}) };
      }),
    };
    if (options.dryRun) return report;
    await store.upsertDag({ dagId: found.dag.dagId, file: found.file, version: found.version, serialized: found.dag });
    if (options.queue) {
      const row = newBackfill(found, options, dates, params, reprocess, maxActiveRuns, null);
      await store.createBackfill(row);
      report.backfillId = row.id;
      const first = await advanceBackfill(store, row, { dagVersion: found.version, serialized: found.dag }, null, Date.now());
      for (const s of first.started) log(`queued run ${s.runId} (${s.action === 'create' ? 'new' : 'cleared'})`);
      return report;
    }
  } finally {
    await store.close();
  }
  return drive(config, found, report, { ...options, reprocess, maxActiveRuns }, dates, params, log);
}

/** Drives the backfill in this process until every date had its turn and every run it made ended. */
async function drive(config: KilnConfig, found: FoundDag, report: BackfillReport, options: BackfillOptions & { reprocess: Reprocess; maxActiveRuns: number }, dates: number[], params: Record<string, unknown>, log: (m: string) => void): Promise<BackfillReport> {
  const outage = new StoreOutage({
    onDown: (err) => log(`the database is unreachable (${errorMessage(err)}): waiting for it`),
    onBack: (downMs) => log(`the database is back after ${(downMs / 1000).toFixed(1)}s`),
  });
  const ctx = await openKilnContext(config, {
    engine: { outage, onTaskChange: (_run, ti) => options.onTaskChange?.(ti), onCallbackFailed: (row, error, file) => log(describeCallbackFailure(row, error, file)) },
  });
  const made = new Map<string, 'create' | 'clear'>();
  const ended = new Map<string, string>();
  try {
    let backfill = newBackfill(found, options, dates, params, options.reprocess, options.maxActiveRuns, ctx.schedulerId);
    await ctx.store.createBackfill(backfill);
    report.backfillId = backfill.id;
    const inFlight = new Map<string, Promise<RunState>>();
    const total = dates.length;
    for (;;) {
      const step = await advanceBackfill(ctx.store, backfill, { dagVersion: found.version, serialized: found.dag }, ctx.schedulerId, Date.now());
      for (const s of step.skipped) log(`skipped ${new Date(s.logicalDate).toISOString()}: ${s.why}`);
      for (const s of step.started) {
        made.set(s.runId, s.action);
        const run = await ctx.store.getRun(found.dag.dagId, s.runId);
        if (run === undefined) continue;
        // A cleared run keeps the DAG version it was made with (its code is pinned to it).
        const dag = run.dagVersion === found.version ? found.dag : ((await ctx.store.getDagVersion(run.dagId, run.dagVersion)) ?? found.dag);
        const state = await loadRunState(ctx.store, run, dag, found.file);
        ctx.engine.adopt(state);
        log(`started run ${s.runId}${s.action === 'clear' ? ' (cleared, runs again)' : ''}`);
        inFlight.set(s.runId, ctx.engine.whenRunFinished(state));
      }
      backfill = (await ctx.store.getBackfill(backfill.id)) ?? backfill;
      if (step.done && inFlight.size === 0) break;
      if (inFlight.size === 0) {
        // A lost compare-and-set, or the turn of dates whose runs someone else is running: look again shortly.
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      const finished = await Promise.race([...inFlight].map(([runId, p]) => p.then((run) => ({ runId, run }))));
      inFlight.delete(finished.runId);
      ended.set(finished.runId, finished.run.run.state);
      log(`${finished.run.run.state === 'success' ? '✔' : '✘'} run ${finished.runId} ${finished.run.run.state} (${ended.size} of ${made.size} done, ${backfill.cursor} of ${total} dates taken)`);
    }
    await ctx.engine.whenCallbacksDone();
  } finally {
    await ctx.close();
  }
  for (const d of report.dates) {
    const state = ended.get(d.runId);
    const action = made.get(d.runId);
    if (action !== undefined) Object.assign(d, { action, state });
    else if (d.action !== 'skip') Object.assign(d, { action: 'skip', why: d.why ?? 'changed while the backfill ran' });
  }
  report.state = [...ended.values()].every((s) => s === 'success') ? 'success' : 'failed';
  return report;
}

function newBackfill(found: FoundDag, options: Pick<BackfillOptions, 'from' | 'to' | 'backwards'>, dates: number[], params: Record<string, unknown>, reprocess: Reprocess, maxActiveRuns: number, driver: string | null): BackfillRow {
  const now = Date.now();
  return {
    id: `backfill__${found.dag.dagId}__${new Date(now).toISOString()}__${Math.random().toString(36).slice(2, 8)}`,
    dagId: found.dag.dagId, fromDate: options.from, toDate: options.to, reprocess, maxActiveRuns, backwards: options.backwards ?? false,
    params, dates, cursor: 0, driver, state: 'running', createdAt: now,
  };
}
