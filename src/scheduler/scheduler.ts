/**
 * The scheduler service's loop. Readiness is event-driven (the RunEngine decides downstream
 * tasks the moment a task finishes); this loop does only the work that depends on time or on
 * other processes, once per tick:
 *
 *   heartbeat   own row in the scheduler table, on its own timer (takeover needs it fresh)
 *   parse       re-list the DAG folder every dagDirListIntervalMs, in the background
 *   schedules   create the runs whose interval has ended (only DAGs whose cursor is due)
 *   claim       store.claimRuns: new queued runs and runs of dead schedulers; adopt each one
 *               (its task instances are read once, here, and then live in memory); a queued
 *               run is started by store.startRun, which keeps maxActiveRuns under a lock
 *   liveness    zombies and tries stuck in queued, among the queued/running rows only
 *   pools       pool sizes minus what other schedulers use, handed to the engine as its
 *               estimate; the store takes the slots exactly as it queues each try
 *
 * No step reads every task instance of the running runs: a tick reads run rows, DAG rows
 * that are due, and the queued/running task instances (bounded by executor parallelism).
 */
import { hostname } from 'node:os';
import type { SerializedDag } from '../dag/types.js';
import { errorMessage } from '../errors.js';
import type { CallbackRow, DagRow, RunRow, Store, TiRow } from '../store/types.js';
import { advanceBackfill } from './backfill.js';
import { describeCallback, type CallbackRunContext } from './callbacks.js';
import { livenessActions } from './liveness.js';
import { activeTaskInstances, poolLimits } from './pool-limits.js';
import { createDueRuns } from './run-creation.js';
import type { RunEngine } from './run-engine.js';
import { loadRunState } from './run-loading.js';
import { RunState, runKey } from './run-state.js';
import { StoreOutage } from './store-outage.js';

/** Where DAGs come from: parsed off this thread, recorded in the store as versions and import errors. */
export interface DagSource {
  refresh(): Promise<void>;
}

export type LogLevel = 'info' | 'warn' | 'error';
/** What a log line is about, where it applies (the JSON log format carries them as fields). */
export interface LogFields {
  dag_id?: string;
  run_id?: string;
  task_id?: string;
  try?: number;
  /** A worker host's name (kiln worker's lines). */
  worker?: string;
}

export interface SchedulerOptions {
  store: Store;
  engine: RunEngine;
  schedulerId: string;
  dagSource: DagSource;
  /** The map the engine reads pool sizes from; refreshed here every tick. */
  poolSlots: Map<string, number>;
  intervalMs: number;
  dagDirListIntervalMs: number;
  zombieTimeoutMs: number;
  queuedTimeoutMs: number;
  /** A scheduler whose heartbeat is older than this is dead: its runs are taken over. */
  takeoverAfterMs: number;
  /** Most runs this scheduler drives (or holds waiting) at once; it claims no more. */
  maxRuns: number;
  exitWhenIdle?: boolean;
  log?: (level: LogLevel, message: string, fields?: LogFields) => void;
  /**
   * The heartbeat failed for a reason other than a lost connection (the database answers but
   * refuses the write: read-only, full, schema gone): the scheduler cannot go on.
   */
  onFenced?: (reason: string) => void;
  /** Shared with the run engine: a lost connection is logged once, and waited out (see store-outage.ts). */
  outage?: StoreOutage;
  now?: () => number;
  /** Observers (metrics): a tick's duration, a heartbeat recorded, a queued run started here, a zombie try ended. */
  onTick?: (durationMs: number) => void;
  onHeartbeat?: (at: number) => void;
  onRunStarted?: (run: RunRow) => void;
  onZombie?: (ti: TiRow) => void;
}

export class Scheduler {
  private readonly store: Store;
  private readonly engine: RunEngine;
  private readonly now: () => number;
  private readonly log: (level: LogLevel, message: string, fields?: LogFields) => void;
  private readonly startedAt: number;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastHeartbeatOkAt: number;
  private heartbeatInFlight = false;
  private readonly outage: StoreOutage;
  /** No heartbeat recorded for half the takeover time: the runs were given up (see checkFence()). */
  private fenced = false;
  /** DAG rows, refreshed after each parse pass. */
  private dags = new Map<string, DagRow>();
  /** When each scheduled DAG next needs a look (end of its next interval). */
  private readonly nextCheckAt = new Map<string, number>();
  private parsing: Promise<void> | null = null;
  private parsedOnce = false;
  private nextParseAt = 0;
  private readonly versions = new Map<string, SerializedDag>();
  private readonly referencedPools = new Set<string>();
  /** Referenced pools missing from the table, reported once each. */
  private readonly missingPools = new Set<string>();
  /** Runs we hold but cannot start now, with why (logged once each). */
  private readonly waiting = new Map<string, string>();

  constructor(private readonly options: SchedulerOptions) {
    this.store = options.store;
    this.engine = options.engine;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
    this.startedAt = this.now();
    this.lastHeartbeatOkAt = this.startedAt;
    this.outage = options.outage ?? new StoreOutage();
  }

  /** Runs until stop() (resolves 'stopped') or, with exitWhenIdle, until nothing is left to do ('idle'). */
  async run(): Promise<'stopped' | 'idle'> {
    await this.heartbeat();
    const beatEveryMs = Math.max(10, Math.min(this.options.intervalMs, this.options.takeoverAfterMs / 5));
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), beatEveryMs);
    try {
      while (!this.stopping) {
        try {
          const tickStart = performance.now();
          await this.tick();
          this.options.onTick?.(performance.now() - tickStart);
          if (this.options.exitWhenIdle && (await this.isIdle())) return 'idle';
        } catch (err) {
          // A lost connection is logged once, by the outage; the next ticks wait it out.
          if (!this.outage.failed(err)) this.log('error', `tick failed: ${errorMessage(err)}`);
        }
        await this.sleep(this.options.intervalMs);
      }
      return 'stopped';
    } finally {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
      await this.parsing;
    }
  }

  /** Stops after the current tick; claims nothing more. */
  stop(): void {
    this.stopping = true;
    this.wake();
  }

  /** Runs the next tick now (a run finished: a waiting run may start, or we may be idle). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Waits `ms`, or less when woken; a wake during a tick cuts the next wait short. */
  private sleep(ms: number): Promise<void> {
    if (this.stopping || this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wakeUp?.(), ms);
      this.wakeUp = () => {
        this.wakeUp = null;
        this.woken = false;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Reads first, then changes the engine in one synchronous step at the end, so everything
   * a tick decides (adoptions, zombies, requeues) goes out in one flush: one transaction.
   */
  private async tick(): Promise<void> {
    // While the database is away, or behind what the engine still has to write (heartbeats of
    // running tries, for one: a try would look like a zombie), nothing it says is acted on.
    if (this.outage.isDown || this.engine.writesBehind || this.fenced) return;
    const generation = this.outage.generation;
    const now = this.now();
    if (now >= this.nextParseAt && !this.parsing) this.startParse(now);
    await this.createScheduledRuns(now);
    await this.advanceBackfills(now);
    const adoptions = await this.claim(now);
    const owedCallbacks = await this.claimCallbacks(now);
    const { running, queued } = await activeTaskInstances(this.store);
    const pools = await this.store.listPools();
    // An outage between the reads: drop them (claims made are kept; the next tick adopts).
    if (this.outage.generation !== generation || this.engine.writesBehind || this.fenced) return;

    for (const { run, started } of adoptions) this.adopt(run, started);
    if (owedCallbacks.length > 0) this.engine.runOwedCallbacks(owedCallbacks);
    this.checkLiveness(now, running, queued);
    const slots = this.options.poolSlots;
    slots.clear();
    for (const [name, n] of poolLimits(pools, [...running, ...queued], this.options.schedulerId, this.referencedPools)) slots.set(name, n);
    for (const name of this.referencedPools) {
      if (pools.some((p) => p.name === name) || this.missingPools.has(name)) continue;
      this.missingPools.add(name);
      this.log('warn', `tasks name the pool '${name}', which does not exist: they wait until \`kiln pools set ${name} <slots>\``);
    }
    this.engine.sweepOrphans();
    this.engine.poke();
  }

  // ---- heartbeat -------------------------------------------------------------------

  private async heartbeat(): Promise<void> {
    const now = this.now();
    // Also while a heartbeat hangs on a connection that does not answer (a slow one while the
    // database is known to answer is not an outage: no fence, as before).
    if (this.outage.isDown) this.checkFence(now);
    if (this.heartbeatInFlight) return;
    this.heartbeatInFlight = true;
    try {
      await this.store.heartbeatScheduler({ id: this.options.schedulerId, hostname: hostname(), pid: process.pid, startedAt: this.startedAt, lastHeartbeatAt: now });
      this.lastHeartbeatOkAt = now;
      this.options.onHeartbeat?.(now);
      this.outage.ok();
      if (this.fenced) {
        this.fenced = false;
        this.log('info', 'heartbeat recorded again: claiming runs again');
      }
    } catch (err) {
      if (this.outage.failed(err)) this.checkFence(this.now());
      // The database answers but refuses the write (read-only, disk full, schema gone): retrying changes nothing.
      else this.options.onFenced?.(`recording the scheduler heartbeat failed: ${errorMessage(err)}`);
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  /**
   * Past half the takeover time without a recorded heartbeat, another scheduler may soon take
   * this one's runs over: stop driving them first (their tries are cancelled), so no task
   * instance runs in two places. When the heartbeat is recorded again, the runs still held by
   * this scheduler are claimed and adopted again (a cancelled try runs again with a new try
   * number); results kept from before are written first, and compare-and-set decides.
   */
  private checkFence(now: number): void {
    const silentMs = now - this.lastHeartbeatOkAt;
    if (this.fenced || silentMs <= this.options.takeoverAfterMs / 2) return;
    this.fenced = true;
    const seconds = Math.round(silentMs / 1000);
    const runs = this.engine.abandonAll(`no scheduler heartbeat recorded for ${seconds}s: another scheduler may take the run over`);
    this.log('warn', `no heartbeat recorded for ${seconds}s: another scheduler may take this one's runs over after ${Math.round(this.options.takeoverAfterMs / 1000)}s, so it stops driving its ${runs} run(s) and cancels their running tries; it claims runs again once its heartbeat is recorded`);
  }

  // ---- DAG files -------------------------------------------------------------------

  private startParse(now: number): void {
    this.nextParseAt = now + this.options.dagDirListIntervalMs;
    this.parsing = (async () => {
      try {
        await this.options.dagSource.refresh();
        this.dags = new Map((await this.store.listDags()).map((d) => [d.dagId, d]));
        this.nextCheckAt.clear();
        this.parsedOnce = true;
      } catch (err) {
        if (!this.outage.failed(err)) this.log('error', `reading the DAG folder failed: ${errorMessage(err)}`);
        else this.nextParseAt = 0; // the database was away: read the folder again once it is back
      } finally {
        this.parsing = null;
      }
    })();
  }

  // ---- scheduled runs --------------------------------------------------------------

  private async createScheduledRuns(now: number): Promise<void> {
    for (const cached of this.dags.values()) {
      if (cached.serialized.schedule === null || (this.nextCheckAt.get(cached.dagId) ?? 0) > now) continue;
      const dag = await this.store.getDag(cached.dagId);
      if (!dag) {
        this.dags.delete(cached.dagId);
        continue;
      }
      this.dags.set(dag.dagId, dag);
      const { created, nextCheckAt } = await createDueRuns(this.store, dag, now);
      // A paused DAG is looked at again every tick, so unpausing it takes effect at once.
      this.nextCheckAt.set(dag.dagId, dag.isPaused ? 0 : nextCheckAt);
      for (const r of created) this.log('info', `created run ${r.runId} of DAG ${r.dagId}`, { dag_id: r.dagId, run_id: r.runId });
    }
  }

  // ---- backfills (kiln backfill --queue, or one whose driving process died) --------

  /**
   * Makes the next runs of every backfill the schedulers drive (see backfill.ts), unclaimed:
   * the claim step below picks them up like any queued run. Several schedulers may do this at
   * once: each run is made once, and the cursor moves by compare-and-set.
   */
  private async advanceBackfills(now: number): Promise<void> {
    for (const backfill of await this.store.listSchedulerBackfills(now - this.options.takeoverAfterMs)) {
      const dag = this.dags.get(backfill.dagId) ?? (await this.store.getDag(backfill.dagId));
      if (!dag) continue; // its file is gone: the backfill waits for it
      if (backfill.driver !== null) this.log('warn', `backfill ${backfill.id}: its \`kiln backfill\` process stopped answering; the schedulers drive it on`);
      const step = await advanceBackfill(this.store, backfill, { dagVersion: dag.version, serialized: dag.serialized }, null, now);
      for (const s of step.started) this.log('info', `backfill ${backfill.id}: ${s.action === 'create' ? 'created' : 'cleared'} run ${s.runId} of DAG ${backfill.dagId}`);
      if (step.done && !step.lost) this.log('info', `backfill ${backfill.id}: every date has had its run made`);
    }
  }

  // ---- claiming and adopting -------------------------------------------------------

  /**
   * Claims runs and returns those to adopt now, with their task instances (read once, here).
   * A queued run is started here, by the store, which checks maxActiveRuns in the same
   * transaction (exact across schedulers); `started` says it was queued until now.
   */
  private async claim(now: number): Promise<Array<{ run: RunState; started: boolean }>> {
    const room = Math.max(0, this.options.maxRuns - this.engine.runCount - this.waiting.size);
    const held = await this.store.claimRuns(this.options.schedulerId, now - this.options.takeoverAfterMs, room);
    const waitingBefore = new Map(this.waiting);
    this.waiting.clear();
    const runningByDag = new Map<string, number>();
    const adoptions: Array<{ run: RunState; started: boolean }> = [];
    const wait = (key: string, row: RunRow, why: string): void => {
      this.waiting.set(key, why);
      if (waitingBefore.get(key) !== why) this.log('info', `run ${row.runId} of DAG ${row.dagId} waits: ${why}`, { dag_id: row.dagId, run_id: row.runId });
    };
    for (const row of held) {
      const key = runKey(row.dagId, row.runId);
      if (this.engine.hasRun(row.dagId, row.runId)) {
        // Set back to 'queued' under us (tasks clear/mark)? The engine checks and merges.
        if (row.state === 'queued') this.engine.refresh(row.dagId, row.runId);
        continue;
      }
      // A running run we hold that the engine does not: it may have ended (and been released)
      // between the claim's read and now; the engine commits a run's end before it lets go,
      // so the row read again says; one set back to queued meanwhile waits for the next tick.
      // (After a fence, it is still running: taken up again.)
      if (row.state === 'running' && row.claimedBy === this.options.schedulerId && (await this.store.getRun(row.dagId, row.runId))?.state !== 'running') continue;
      const why = await this.cannotStart(row, runningByDag);
      if (why !== null) {
        wait(key, row, why);
        continue;
      }
      const run = await this.load(row);
      if (!run) continue;
      if (row.state === 'queued') {
        // cannotStart() read the running runs a moment ago; another scheduler may have started
        // one of this DAG's since. The store decides, under a lock.
        const limit = this.dags.get(row.dagId)!.serialized.maxActiveRuns;
        if (!(await this.store.startRun(row.dagId, row.runId, this.options.schedulerId, limit, now))) {
          runningByDag.set(row.dagId, Math.max(limit, runningByDag.get(row.dagId) ?? 0));
          wait(key, row, maxActiveRunsReached(row.dagId, limit));
          continue;
        }
        run.run = { ...run.run, state: 'running', startedAt: now };
        runningByDag.set(row.dagId, (runningByDag.get(row.dagId) ?? 0) + 1);
      }
      adoptions.push({ run, started: row.state === 'queued' });
    }
    return adoptions;
  }

  /** Null when the run can be adopted now, else why not. */
  private async cannotStart(row: RunRow, runningByDag: Map<string, number>): Promise<string | null> {
    if (this.engine.isDraining(row.dagId, row.runId)) return 'tries of it that were cancelled here have not ended yet';
    const dag = await this.store.getDag(row.dagId);
    if (!dag) return `DAG ${row.dagId} is not in the database (its file is gone or failed to import)`;
    this.dags.set(dag.dagId, dag);
    if (row.state !== 'queued') return null; // taken over while running: always driven on
    if (dag.isPaused) return 'the DAG is paused';
    let running = runningByDag.get(row.dagId);
    if (running === undefined) {
      // Runs of this DAG running anywhere (other schedulers too), plus ours not yet committed as running.
      const elsewhere = await this.store.listRuns({ dagId: row.dagId, states: ['running'] });
      const mine = [...this.engine.heldRuns()].filter((r) => r.run.dagId === row.dagId);
      const ids = new Set([...elsewhere.map((r) => r.runId), ...mine.map((r) => r.run.runId)]);
      running = ids.size;
      runningByDag.set(row.dagId, running);
    }
    const limit = dag.serialized.maxActiveRuns;
    return running >= limit ? maxActiveRunsReached(row.dagId, limit) : null;
  }

  private async load(row: RunRow): Promise<RunState | null> {
    const serialized = await this.dagVersion(row.dagId, row.dagVersion);
    if (!serialized) {
      this.log('error', `run ${row.runId} of DAG ${row.dagId}: version ${row.dagVersion} is not in the database; the run cannot be driven`, { dag_id: row.dagId, run_id: row.runId });
      return null;
    }
    return loadRunState(this.store, row, serialized, this.dags.get(row.dagId)!.file);
  }

  private adopt(run: RunState, started: boolean): void {
    for (const t of run.dag.tasks) this.referencedPools.add(t.pool);
    this.engine.adopt(run);
    if (started) this.options.onRunStarted?.(run.run);
    this.log('info', `${started ? 'started' : 'took over'} run ${run.run.runId} of DAG ${run.run.dagId}`, { dag_id: run.run.dagId, run_id: run.run.runId });
  }

  private async dagVersion(dagId: string, version: string): Promise<SerializedDag | undefined> {
    const key = `${dagId}\u0000${version}`;
    let dag = this.versions.get(key);
    if (!dag) {
      dag = await this.store.getDagVersion(dagId, version);
      if (!dag) return undefined;
      if (this.versions.size >= 256) this.versions.delete(this.versions.keys().next().value!);
      this.versions.set(key, dag);
    }
    return dag;
  }

  // ---- callbacks ---------------------------------------------------------

  /**
   * Callbacks owed by a scheduler (or `dags test`) that died before running them, and this
   * one's own that the engine does not hold (it restarted): each with what it needs of its run.
   */
  private async claimCallbacks(now: number): Promise<Array<{ row: CallbackRow; context: CallbackRunContext | null }>> {
    const room = Math.max(0, MAX_CALLBACKS_HELD - this.engine.callbackCount);
    const rows = await this.store.claimCallbacks(this.options.schedulerId, now - this.options.takeoverAfterMs, room);
    const owed: Array<{ row: CallbackRow; context: CallbackRunContext | null }> = [];
    for (const row of rows) {
      if (this.engine.holdsCallback(row.id) || owed.length >= room) continue;
      const context = await this.callbackContext(row);
      if (context === null) this.log('warn', `${describeCallback(row)} cannot run: its run, its DAG or its DAG version is gone from the database`);
      else this.log('info', `running ${describeCallback(row)}, owed since ${new Date(row.createdAt).toISOString()}`);
      owed.push({ row, context });
    }
    return owed;
  }

  private async callbackContext(row: CallbackRow): Promise<CallbackRunContext | null> {
    const held = this.engine.heldRun(row.dagId, row.runId);
    if (held !== undefined) return held;
    const run = await this.store.getRun(row.dagId, row.runId);
    const dagRow = run && (await this.store.getDag(row.dagId));
    const dag = run && dagRow ? await this.dagVersion(row.dagId, run.dagVersion) : undefined;
    return run && dagRow && dag ? { run, dag, dagFile: dagRow.file } : null;
  }

  // ---- liveness ----------------------------------------------------------

  /** Zombies and tries stuck in queued among the runs this scheduler drives. */
  private checkLiveness(now: number, running: TiRow[], queued: TiRow[]): void {
    const actions = livenessActions({
      running, queued, now,
      zombieTimeoutMs: this.options.zombieTimeoutMs,
      queuedTimeoutMs: this.options.queuedTimeoutMs,
      isMine: (ti) => this.engine.hasRun(ti.dagId, ti.runId),
    });
    for (const a of actions) {
      const done = a.kind === 'zombie' ? this.engine.expireTry(a.ti, a.reason) : this.engine.requeueTry(a.ti, a.reason);
      if (!done) continue;
      this.log('warn', `task ${a.ti.taskId} of run ${a.ti.runId} (DAG ${a.ti.dagId}, try ${a.ti.tryNumber}): ${a.reason}`, { dag_id: a.ti.dagId, run_id: a.ti.runId, task_id: a.ti.taskId, try: a.ti.tryNumber });
      if (a.kind === 'zombie') this.options.onZombie?.(a.ti);
    }
  }

  // ---- idle ------------------------------------------------------------------------

  /**
   * Nothing left to do: the DAG folder was read, this scheduler drives no run, no scheduled
   * run is due, and no queued or running run is left in the database (other than queued
   * runs of paused DAGs and runs of DAGs that are gone, which only an operator can unblock).
   */
  private async isIdle(): Promise<boolean> {
    if (!this.parsedOnce || this.engine.runCount > 0 || this.engine.callbackCount > 0) return false;
    const now = this.now();
    for (const dag of this.dags.values()) {
      if (dag.serialized.schedule !== null && !dag.isPaused && (this.nextCheckAt.get(dag.dagId) ?? 0) <= now) return false;
    }
    // Callbacks still owed, also those of a scheduler that died a moment ago (taken over soon).
    if ((await this.store.countCallbacks()) > 0) return false;
    // A backfill whose next runs are not made yet (its last run ended after this tick's step).
    if ((await this.store.listSchedulerBackfills(now - this.options.takeoverAfterMs)).length > 0) return false;
    const dags = new Map<string, DagRow | undefined>();
    for (const run of await this.store.listRuns({ states: ['queued', 'running'] })) {
      if (!dags.has(run.dagId)) dags.set(run.dagId, await this.store.getDag(run.dagId));
      const dag = dags.get(run.dagId);
      if (!dag || (dag.isPaused && run.state === 'queued')) continue;
      return false;
    }
    return true;
  }
}

/** Most callbacks one scheduler holds at once (waiting for a slot or running). */
const MAX_CALLBACKS_HELD = 100;

function maxActiveRunsReached(dagId: string, limit: number): string {
  return `DAG ${dagId} has maxActiveRuns (${limit}) runs running`;
}
