/**
 * `kiln scheduler`: wires the service (store, executor, run engine, DAG folder, loop) and
 * owns its lifecycle. A clean shutdown (SIGTERM/SIGINT, or idle with --exit-when-idle):
 *
 *   1. the loop stops: nothing more is created or claimed
 *   2. the engine queues no new try; running tries get up to drainMs to finish, and their
 *      results are recorded
 *   3. the engine stops listening, the executor kills what is left (those task instances
 *      stay 'running' in the database, and the next scheduler resets them to a new try)
 *   4. pending writes are flushed, then the claims are released so another scheduler can
 *      take the runs at once instead of after the takeover timeout
 *
 * A second signal skips the drain. A fatal error (a write the database refuses: disk full,
 * read-only, a constraint) kills the tries at once and exits 1.
 *
 * The database going away (connection refused or lost: a PostgreSQL restart) is not an error:
 * the scheduler logs it once, keeps the results of tries that end meanwhile in memory, queues
 * no new try, and writes what it kept once the database answers again (see
 * scheduler/store-outage.ts). Past half the takeover time without a recorded heartbeat it
 * gives its runs up (their tries are cancelled: another scheduler may take them over), and
 * claims runs again when the database is back. A shutdown during an outage waits for the
 * database at most FATAL_CLOSE_MS more, then drops what it could not write.
 */
import { DEFAULT_DRAIN_MS, DEFAULT_TAKEOVER_AFTER_MS, type KilnConfig } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { Scheduler, type LogFields, type LogLevel } from '../scheduler/scheduler.js';
import { StoreOutage } from '../scheduler/store-outage.js';
import { createStore } from '../store/index.js';
import { openKilnContext } from './context.js';
import { RetentionCleaner } from './db-clean.js';
import { StoreMaintenance } from './store-maintenance.js';
import { dagSourcesFolder } from './dag-files.js';
import { DagFolderSync } from './scheduler-dags.js';
import { schedulerLog } from './log.js';
import { metricsAddress, openTracer, schedulerMetrics, schedulerObservers, serveMetrics, timedDagSource, type MetricsAddress } from './metrics.js';
import type { KilnMetrics } from '../metrics/index.js';
import type { KilnObserver } from '../metrics/observer.js';
import { describeCallbackFailure } from '../scheduler/callbacks.js';

export interface SchedulerServiceOptions {
  exitWhenIdle?: boolean;
  /** How long running tries may finish at shutdown. */
  drainMs?: number;
  /** A scheduler without heartbeat this long is dead and its runs are taken over. */
  takeoverAfterMs?: number;
  /** Default: stderr, in the config's logFormat. */
  log?: (level: LogLevel, message: string, fields?: LogFields) => void;
  /** Called once on a fatal error, before the shutdown starts (the CLI arms an exit deadline). */
  onFatal?: (reason: string) => void;
  /** Where to serve /metrics (null: nowhere); default: metricsPort of the config, if set. */
  metrics?: MetricsAddress | null;
}

export { DEFAULT_DRAIN_MS, DEFAULT_TAKEOVER_AFTER_MS };
const FATAL_CLOSE_MS = 10_000;

export class SchedulerService {
  private scheduler: Scheduler | undefined;
  private metrics: KilnMetrics | undefined;
  private stopRequested = false;
  private drainMs: number;
  private fatal: string | null = null;
  private readonly log: (level: LogLevel, message: string, fields?: LogFields) => void;

  constructor(
    private readonly config: KilnConfig,
    private readonly options: SchedulerServiceOptions = {},
  ) {
    this.drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
    this.log = options.log ?? schedulerLog(config.logFormat);
  }

  /** The scheduler's metrics in the Prometheus format (the web server's /metrics), or null while they are off. */
  async scrapeMetrics(): Promise<{ contentType: string; body: string } | null> {
    return this.metrics === undefined ? null : this.metrics.scrape();
  }

  /** Starts a clean shutdown; `immediate` (a second signal) skips the drain. */
  stop(immediate = false): void {
    this.stopRequested = true;
    if (immediate) this.drainMs = 0;
    this.scheduler?.stop();
  }

  /** Runs until stopped or idle; resolves with the process exit code. */
  async run(): Promise<number> {
    const { config, options, log } = this;
    const store = await createStore(config.databaseUrl);
    let metricsServer: { close(): Promise<void> } | null = null;
    let tracer: (KilnObserver & { close(): Promise<void> }) | null = null;
    try {
      await store.migrate();
      const address = options.metrics === undefined ? metricsAddress(config) : options.metrics;
      const metrics = address === null ? undefined : await schedulerMetrics(config, store);
      this.metrics = metrics;
      if (metrics !== undefined && address !== null) {
        const server = await serveMetrics(metrics, address);
        metricsServer = server;
        log('info', `serving metrics at ${server.url}`);
      }
      if (config.otlpEndpoint !== null) {
        tracer = await openTracer(config.otlpEndpoint);
        log('info', `exporting traces to ${config.otlpEndpoint}`);
      }
      const observers: KilnObserver[] = [...(metrics ? [metrics] : []), ...(tracer ? [tracer] : [])];
      const poolSlots = new Map<string, number>();
      const outage = new StoreOutage({
        onDown: (err) => log('warn', `the database is unreachable (${errorMessage(err)}): retrying until it answers; results of tasks that end meanwhile are kept in memory, and no task is started`),
        onBack: (downMs) => log('info', `the database is back after ${(downMs / 1000).toFixed(1)}s: writing what was kept`),
      });
      const ctx = await openKilnContext(config, {
        store,
        heartbeat: false, // the Scheduler beats on its own timer, with its own takeover policy
        observers,
        engine: {
          poolSlots,
          poolsInStore: true, // other schedulers may share the database: slots are taken there
          onRunFinished: (run) => {
            log('info', `run ${run.run.runId} of DAG ${run.run.dagId} ended ${run.run.state}`, { dag_id: run.run.dagId, run_id: run.run.runId });
            this.scheduler?.wake();
          },
          onRunStale: (run) => log('warn', `run ${run.run.runId} of DAG ${run.run.dagId} was changed by another process; its tries here are cancelled and it is read again`, { dag_id: run.run.dagId, run_id: run.run.runId }),
          onCallbackFailed: (row, error, file) => log('warn', describeCallbackFailure(row, error, file)),
          onError: (err) => this.fail(`writing to the database failed: ${errorMessage(err)}`),
          outage,
        },
      });
      const dagFolder = new DagFolderSync(store, { dagsFolder: config.dagsFolder, parseTimeoutMs: config.parseTimeoutMs, sourcesDir: dagSourcesFolder(config), log: (m) => log('warn', m) });
      const scheduler = new Scheduler({
        store,
        engine: ctx.engine,
        schedulerId: ctx.schedulerId,
        dagSource: metrics ? timedDagSource(dagFolder, metrics) : dagFolder,
        poolSlots,
        intervalMs: config.schedulerIntervalMs,
        dagDirListIntervalMs: config.dagDirListIntervalMs,
        zombieTimeoutMs: config.zombieTimeoutMs,
        queuedTimeoutMs: config.queuedTimeoutMs,
        takeoverAfterMs: options.takeoverAfterMs ?? DEFAULT_TAKEOVER_AFTER_MS,
        maxRuns: Math.max(16, 2 * config.parallelism),
        exitWhenIdle: options.exitWhenIdle,
        log,
        onFenced: (reason) => this.fail(reason),
        outage,
        ...schedulerObservers(metrics, observers),
      });
      this.scheduler = scheduler;
      if (this.stopRequested) scheduler.stop();
      log('info', `scheduler ${ctx.schedulerId} started: executor ${config.executor}, parallelism ${config.parallelism}, DAGs in ${config.dagsFolder}`);

      // `retention` set: delete old finished runs now and then periodically, beside the loop.
      const retention = config.retentionMs === null ? null : new RetentionCleaner(store, { logsFolder: config.logsFolder, retentionMs: config.retentionMs }, log);
      retention?.start();
      const maintenance = new StoreMaintenance(store, log);
      maintenance.start();
      let how: 'stopped' | 'idle';
      try {
        how = await scheduler.run();
      } finally {
        await retention?.stop();
        await maintenance.stop();
      }
      log('info', how === 'idle' ? 'nothing left to do: stopping' : 'stopping');
      const engine = ctx.engine;
      engine.freeze();
      const drainStart = Date.now();
      // Polling is fine here: shutdown only, and the drain is bounded.
      while (this.fatal === null && engine.activeTryCount > 0 && Date.now() - drainStart < this.drainMs) await delay(20);
      engine.detach();
      // One last flush of what is pending; it also settles whenIdle() after a failed one.
      engine.poke();
      // After a fatal error, or while the database is away, it may not answer at all: do not wait for it forever.
      const settle = (p: Promise<void>): Promise<void> => (this.fatal === null && !outage.isDown && !engine.writesBehind ? p : atMost(p, FATAL_CLOSE_MS));
      await settle(ctx.close({ drainMs: 0 }));
      if (engine.writesBehind) {
        const dropped = engine.dropUnwritten();
        log('warn', `the database is still unreachable: ${dropped} task-instance change(s) were not written; the next scheduler runs those tasks again`);
      }
      await settle(store.releaseRuns(ctx.schedulerId).catch((err: unknown) => log('warn', `releasing claims failed: ${errorMessage(err)}`)));
      log('info', 'scheduler stopped');
      return this.fatal === null ? 0 : 1;
    } finally {
      await metricsServer?.close();
      await tracer?.close().catch((err: unknown) => log('warn', `exporting the last traces failed: ${errorMessage(err)}`));
      await store.close();
    }
  }

  private fail(reason: string): void {
    if (this.fatal !== null) return;
    this.fatal = reason;
    this.log('error', `${reason}; stopping`);
    this.options.onFatal?.(reason);
    this.scheduler?.stop();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `p`, or nothing after `ms` (its failure ignored); the timer does not keep the process alive. */
function atMost(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
    p.then(resolve, () => resolve());
  });
}
