/**
 * The run engine drives DAG runs held in memory: it decides readiness per event, hands
 * ready task instances to the executor, and persists every change. Used by `kiln dags
 * test` (one run) and by the scheduler service (the runs it has claimed).
 *
 * The flow, one "flush" at a time (never two at once):
 *   executor events / retry timers  -> update rows in memory, decide downstream at once
 *   dispatch()                      -> ready task instances become queued (try + 1) while
 *                                      the executor, the run and the pools have room
 *   store.write(batch)              -> all of it in ONE transaction, compare-and-set; with
 *                                      poolsInStore a try takes its pool slots there, or
 *                                      stays scheduled if another scheduler took them first
 *   executor.submit(work)           -> only after the queued rows are committed, so a
 *                                      crash can never leave a task running that the
 *                                      database does not know is queued
 * Events that arrive during a flush are applied in memory and go out with the next one.
 *
 * When another process changes a run under us (`kiln tasks clear|mark`, or a scheduler that
 * took the run over), one of our compare-and-sets fails and the run goes stale: we drop it,
 * cancel its tries and keep them as orphans until they end, so the run is never adopted
 * again (and no task instance started again) while one of its tries still runs here.
 *
 * When the database is away (a write fails on a lost connection), the batch that failed
 * and everything after it wait in memory, in order; nothing is dispatched until they are
 * written (see engine-writer.ts, which owns the flush loop, and store-outage.ts). Any other
 * failed write is fatal (onError).
 */
import { decides } from '../dag/decisions.js';
import { unmappableReason } from '../dag/mapping.js';
import { retryDelayMs } from '../dag/retry.js';
import type { Isolation, TiState } from '../dag/types.js';
import { KilnError } from '../errors.js';
import type { Executor, ExecutorEvent, TaskApi } from '../executor/types.js';
import { taskKey } from '../protocol/messages.js';
import type { CallbackRow, Store, TiRow, WriteBatch, WriteBatchResult } from '../store/types.js';
import type { CallbackRunContext } from './callbacks.js';
import { EngineCallbacks } from './engine-callbacks.js';
import { OrphanTries } from './orphans.js';
import type { PendingWrites } from './pending-writes.js';
import { ReadyQueue } from './ready-queue.js';
import { RetryTimer } from './retry-timer.js';
import { RunTimeouts } from './run-timeouts.js';
import { EnginePools } from './engine-pools.js';
import { EngineWriter } from './engine-writer.js';
import { Backoff, StoreOutage } from './store-outage.js';
import { dagModuleOf, taskLogFile, taskWork } from './task-work.js';
import { isActive, isFinished, runKey, RunState, tiId, tiIdOf } from './run-state.js';
import { EngineMapping } from './engine-mapping.js';
import { atTaskLimit, queuedRow } from './dispatch-rules.js';
import { diffReloaded } from './run-reload.js';
import { FALLBACK_MAX_MAP_LENGTH, unstarted } from './expansion.js';
import { readTaskResult } from './task-results.js';

export interface RunEngineOptions {
  store: Store;
  executor: Executor;
  schedulerId: string;
  logsFolder: string;
  /** Where parsed DAG versions' sources are kept: tries import their run's version from there. */
  sourcesFolder?: string;
  defaultIsolation: Isolation;
  /** Slots per pool name; a pool not listed is unlimited. */
  poolSlots?: ReadonlyMap<string, number>;
  /**
   * Several schedulers may share the database (the scheduler service): every try is queued
   * only if the store finds room in its pool in the same transaction (TiWrite.ifPoolFull),
   * and `poolSlots` is only this engine's estimate of the room the others leave.
   */
  poolsInStore?: boolean;
  now?: () => number;
  /** Called after a change to a task instance was committed. */
  onTaskChange?: (run: RunState, ti: TiRow) => void;
  onRunFinished?: (run: RunState) => void;
  /** The store rejected a write for this run: it changed under us (cleared, taken over). */
  onRunStale?: (run: RunState) => void;
  /** A write failed for a reason other than a lost connection: the engine writes and queues nothing more. */
  onError?: (err: unknown) => void;
  /**
   * Where the engine reports a lost connection and learns that the database is back; shared
   * with the scheduler loop so an outage is logged once. Default: a silent one of its own.
   */
  outage?: StoreOutage;
  /** How long an abandoned (cancelled) try may hold its task instance before we stop waiting for its end. */
  orphanGraceMs?: number;
  /** A callback ran and threw (or its worker failed): logged, it changes no state. */
  onCallbackFailed?: (row: CallbackRow, error: string, logFile: string | null) => void;
}

/** The fields of an executor 'finished' event the engine records. */
type TryEnd = Omit<Extract<ExecutorEvent, { type: 'finished' }>, 'type' | 'key'>;

const DEFAULT_ORPHAN_GRACE_MS = 60_000;

export class RunEngine {
  private readonly runs = new Map<string, RunState>();
  /** Try key (`dag/run/task/try`) -> the run and task instance (tiId) it belongs to, while the try is active. */
  private readonly tries = new Map<string, { run: RunState; tiId: string }>();
  /** DAG modules the executor was asked to preload (`file\0version`). */
  private readonly preloaded = new Set<string>();
  /** Expanding mapped tasks (see engine-mapping.ts). */
  private readonly mapping: EngineMapping;
  private readonly ready = new ReadyQueue();
  private readonly retries: RetryTimer;
  private readonly timeouts: RunTimeouts;
  /** Callbacks owed by this engine's changes or claimed from a dead owner (see callbacks.ts). */
  private readonly callbacks: EngineCallbacks;
  /** The pool slots this engine holds, and may hold (see engine-pools.ts). */
  private readonly pools: EnginePools;
  private readonly orphans = new OrphanTries();
  /** Runs to compare with the database at the next flush (see refresh()). */
  private readonly reloads = new Set<string>();
  private frozen = false;
  private detached = false;
  /** The persistence loop: batches, the outage's kept writes, idle waiters (see engine-writer.ts). */
  private readonly writer: EngineWriter;
  private readonly runWaiters = new Map<string, Array<{ resolve: (run: RunState) => void; reject: (err: unknown) => void }>>();
  private readonly now: () => number;
  private readonly outage: StoreOutage;

  /** Answers runners' XCom pulls: from memory for runs held here, else from the store. */
  readonly taskApi: TaskApi = {
    xcom: async (dagId, runId, taskId) => {
      const held = this.runs.get(runKey(dagId, runId))?.resultOf(taskId);
      if (held !== undefined && held !== null && held !== 'unloaded') return held.value;
      return this.readWaitingOut(() => readTaskResult(this.options.store, dagId, runId, taskId));
    },
  };

  constructor(private readonly options: RunEngineOptions) {
    this.now = options.now ?? Date.now;
    this.retries = new RetryTimer(this.now, (due) => this.retryDue(due));
    this.timeouts = new RunTimeouts(this.now, (run) => this.timeOut(run));
    this.callbacks = new EngineCallbacks({
      owner: options.schedulerId, defaultIsolation: options.defaultIsolation, logsFolder: options.logsFolder,
      sourcesFolder: options.sourcesFolder, now: this.now, onFailed: options.onCallbackFailed,
    });
    this.outage = options.outage ?? new StoreOutage();
    this.pools = new EnginePools(options.poolSlots);
    this.mapping = new EngineMapping({
      store: options.store,
      now: this.now,
      pending: () => this.pending,
      setTi: (run, next, expect) => this.setTi(run, next, expect),
      settle: (run, taskId, state, error) => this.settle(run, taskId, state, error),
      ready: (run, id, weight) => this.ready.push(run, id, weight),
      checkRunDone: (run) => this.checkRunDone(run),
      decideAgain: (run, taskId) => {
        if (this.runs.get(run.key) !== run || run.stale) return;
        this.evaluate(run, taskId);
        this.requestFlush();
      },
      read: (read) => this.readWaitingOut(read),
      onError: (err) => this.options.onError?.(err),
    });
    this.writer = new EngineWriter(options.store, this.outage, {
      dispatch: () => this.dispatch(),
      poolsAtWrite: () => (options.poolsInStore ? this.pools.snapshot() : undefined),
      committed: (p, answer, usedAtWrite) => this.committed(p, answer, usedAtWrite),
      reloadsDue: () => this.reloads.size > 0,
      applyReloads: () => this.applyReloads(),
      failed: (err) => this.writeFailed(err),
    });
  }

  /** What the next flush writes (the writer swaps it for a fresh one as it cuts a batch). */
  private get pending(): PendingWrites {
    return this.writer.pending;
  }

  get runCount(): number {
    return this.runs.size;
  }

  /** Tries handed to the executor that have not ended (abandoned ones included). */
  get activeTryCount(): number {
    return this.tries.size + this.orphans.size;
  }

  hasRun(dagId: string, runId: string): boolean {
    return this.runs.has(runKey(dagId, runId));
  }

  /** A run held in memory, if it is. */
  heldRun(dagId: string, runId: string): RunState | undefined {
    return this.runs.get(runKey(dagId, runId));
  }

  /** The runs held in memory. */
  heldRuns(): IterableIterator<RunState> {
    return this.runs.values();
  }

  /** True while a try of this run that we abandoned may still be running. */
  isDraining(dagId: string, runId: string): boolean {
    return this.orphans.blocksRun(runKey(dagId, runId));
  }

  /**
   * Takes a run into memory and starts driving it. Task instances left queued or running
   * by an executor that is gone (a previous scheduler or a crash) are reset to scheduled:
   * their next try gets a new try number, so a late event of the old try changes nothing.
   */
  adopt(state: RunState): void {
    this.runs.set(state.key, state);
    this.preload(state);
    const now = this.now();
    if (state.run.state === 'queued') {
      state.run = { ...state.run, state: 'running', startedAt: now };
      this.pending.runs.push({ run: state, write: { dagId: state.run.dagId, runId: state.run.runId, expectStates: ['queued'], set: { state: 'running', startedAt: now } } });
    }
    for (const ti of [...state.tis.values()]) {
      if (isActive(ti.state)) {
        // A remote try (bullmq) may still run on its worker host: take it over where the
        // executor can, so it is not run again; else stop it, and keep the task instance from
        // running again until that try has ended (an orphan, see orphans.ts).
        if (this.options.executor.adoptTry && ti.tryNumber > 0 && !this.frozen) {
          this.takeOverTry(state, ti);
          continue;
        }
        if (this.options.executor.cancelsForeignTries && ti.tryNumber > 0) this.abandonTry(state, ti, 'its run was adopted by another scheduler');
        this.setTi(state, { ...ti, state: 'scheduled', pid: null, queuedBy: null }, [ti.state]);
      } else if (ti.state === 'up_for_retry' || ti.state === 'up_for_reschedule') this.armRetry(state, ti);
    }
    for (const taskId of state.byTask.keys()) this.evaluate(state, taskId, true);
    this.timeouts.arm(state);
    this.checkRunDone(state);
    this.requestFlush();
  }

  /** Warm workers import the run's DAG module now, once per module, instead of at its first task. */
  private preload(run: RunState): void {
    if (!this.options.executor.preload) return;
    const key = `${run.dagFile}\u0000${run.run.dagVersion}`;
    if (this.preloaded.has(key)) return;
    this.preloaded.add(key);
    this.options.executor.preload(dagModuleOf(run.dagFile, run.run.dagVersion, this.options.sourcesFolder));
  }

  /**
   * A try a scheduler that is gone left queued or running on a remote executor: it goes on
   * as ours (same try number, same row); the executor reports its events or its end.
   */
  private takeOverTry(run: RunState, ti: TiRow): void {
    const isolation = ti.isolation ?? run.tasks.get(ti.taskId)?.isolation ?? this.options.defaultIsolation;
    const work = taskWork(run, ti, isolation, taskLogFile(this.options.logsFolder, ti.dagId, ti.runId, ti.taskId, ti.tryNumber, ti.mapIndex), this.options.sourcesFolder);
    // Only needed if its job must be added again (Redis lost it): known unless the sources are still being read.
    if (ti.mapIndex >= 0) work.item = run.mapItems.get(ti.taskId)?.[ti.mapIndex];
    this.tries.set(work.key, { run, tiId: tiIdOf(ti) });
    this.pools.take(ti);
    this.options.executor.adoptTry!(work, { started: ti.state === 'running' });
  }

  /** Forgets a run (lost claim, stale): its running tries are left to whoever owns it now. */
  release(state: RunState): void {
    this.runs.delete(state.key);
    this.ready.removeRun(state);
    for (const [key, entry] of this.tries) if (entry.run === state) this.tries.delete(key);
    this.retries.removeRun(state);
    this.timeouts.remove(state);
  }

  /** Callbacks waiting, running, or run and not yet deleted: the scheduler is not idle meanwhile. */
  get callbackCount(): number {
    return this.callbacks.count;
  }

  /** True if this engine holds the callback (or ran it a moment ago). */
  holdsCallback(id: string): boolean {
    return this.callbacks.holds(id);
  }

  /**
   * Runs callbacks owed by a dead owner (claimed by the scheduler), or this engine's own found
   * again; each id at most once here. `context` null: their run is gone, they are dropped.
   */
  runOwedCallbacks(owed: ReadonlyArray<{ row: CallbackRow; context: CallbackRunContext | null }>): void {
    this.callbacks.runOwed(this.pending, owed);
    this.requestFlush();
  }

  /** Resolves when every callback this engine holds has run and its row is deleted. */
  whenCallbacksDone(): Promise<void> {
    return this.callbacks.whenDone();
  }

  onExecutorEvent = (event: ExecutorEvent): void => {
    if (this.detached) return;
    try {
      this.applyEvent(event);
    } catch (err) {
      this.options.onError?.(err);
    }
    // A try's start alone is not worth a transaction (see LAZY_WRITE_MS in engine-writer.ts).
    this.requestFlush(event.type !== 'started');
    if (event.type === 'finished') this.writer.tryEnded();
  };

  /** Re-checks pools/executor room (e.g. after pool sizes changed) and flushes. */
  poke(): void {
    this.pools.reset();
    this.requestFlush();
  }

  /**
   * Compares a held run with the database at the next flush (when none of our writes is in
   * flight). A run set back to 'queued' by another process (`kiln tasks clear|mark`) is
   * merged: task instances changed there are taken as they are there (a try of ours that was
   * marked is cancelled), then readiness is decided again. Any other difference: stale.
   */
  refresh(dagId: string, runId: string): void {
    const key = runKey(dagId, runId);
    if (!this.runs.has(key)) return;
    this.reloads.add(key);
    this.requestFlush();
  }

  /** A running try without heartbeat (zombie): cancel it and fail it, or put it up for retry. */
  expireTry(key: { dagId: string; runId: string; taskId: string; mapIndex?: number; tryNumber: number }, reason: string): boolean {
    const id = tiId(key.taskId, key.mapIndex ?? -1);
    const run = this.runs.get(runKey(key.dagId, key.runId));
    const ti = run?.tis.get(id);
    if (!run || !ti || ti.tryNumber !== key.tryNumber || !isActive(ti.state)) return false;
    const at = this.now();
    this.abandonTry(run, ti, reason);
    this.endTry(run, id, {
      outcome: 'failed', noRetry: false, error: { name: 'KilnError', code: 'TASK_ZOMBIE', message: reason }, exitCode: null, signal: null,
      usage: { peakRssBytes: null, cpuMs: null }, durationMs: at - (ti.startedAt ?? ti.queuedAt ?? at), at,
    });
    this.requestFlush();
    return true;
  }

  /**
   * A try queued for too long without starting: cancel it and queue the task again. The lost
   * try does not count against the task's retries.
   */
  requeueTry(key: { dagId: string; runId: string; taskId: string; mapIndex?: number; tryNumber: number }, reason: string): boolean {
    const id = tiId(key.taskId, key.mapIndex ?? -1);
    const run = this.runs.get(runKey(key.dagId, key.runId));
    const ti = run?.tis.get(id);
    if (!run || !ti || ti.tryNumber !== key.tryNumber || ti.state !== 'queued') return false;
    this.abandonTry(run, ti, reason);
    this.setTi(run, { ...ti, state: 'scheduled', maxTries: ti.maxTries + 1, queuedBy: null }, ['queued']);
    this.ready.push(run, id, run.tasks.get(key.taskId)!.priorityWeight);
    this.requestFlush();
    return true;
  }

  /** Stops waiting for abandoned tries that outlived their grace period. */
  sweepOrphans(): void {
    const expired = this.orphans.expire(this.now());
    for (const o of expired) this.releaseSlots(o);
    if (expired.length > 0) this.requestFlush();
  }

  /** Shutdown, step 1: queue nothing new; events of running tries are still recorded. */
  freeze(): void {
    this.frozen = true;
  }

  /** Shutdown, step 2: ignore executor events (tries killed at shutdown stay 'running' for the next scheduler to take over). */
  detach(): void {
    this.detached = true;
    this.callbacks.clear(); // their rows stay owed: the next owner runs them
  }

  /** Resolves when nothing is pending: no writes, no flush in progress (ready tasks blocked by a limit may remain). */
  whenIdle(): Promise<void> {
    return this.writer.whenIdle();
  }

  /** Resolves when the run reaches success or failed; rejects if it goes stale or the engine fails. */
  whenRunFinished(run: RunState): Promise<RunState> {
    if (this.writer.failure !== null) return Promise.reject(this.writer.failure.err);
    if (run.stale) return Promise.reject(staleError(run));
    if (!this.runs.has(run.key) && (run.run.state === 'success' || run.run.state === 'failed')) return Promise.resolve(run);
    return new Promise((resolve, reject) => {
      const list = this.runWaiters.get(run.key) ?? [];
      list.push({ resolve, reject });
      this.runWaiters.set(run.key, list);
    });
  }

  /**
   * True while changes made here are not all in the database because it was away: a batch
   * waits to be written again, or what was kept during the outage is still going out. The
   * database is behind memory meanwhile (its heartbeats, for one, are older than the tries'),
   * so the scheduler loop acts on nothing it reads from it.
   */
  get writesBehind(): boolean {
    return this.writer.writesBehind;
  }

  /**
   * Stops driving every run held: the scheduler could not record its heartbeat for so long
   * that another one may take its runs over. Their tries are cancelled and kept as orphans
   * until they end, so no task instance of theirs is queued here again meanwhile. Writes
   * already made for them still go out once the database is back; their compare-and-sets
   * decide. Returns how many runs were dropped.
   */
  abandonAll(reason: string): number {
    const held = [...this.runs.values()];
    for (const run of held) {
      run.stale = true; // its failed compare-and-sets and late events change nothing here now
      for (const ti of run.tis.values()) if (isActive(ti.state)) this.abandonTry(run, ti, reason);
      this.release(run);
      for (const w of this.runWaiters.get(run.key) ?? []) w.reject(new KilnError('STORE_UNAVAILABLE', `run '${run.run.runId}' of DAG '${run.run.dagId}' was given up: ${reason}`));
      this.runWaiters.delete(run.key);
    }
    this.requestFlush();
    return held.length;
  }

  /**
   * Shutdown while the database is away: gives up on what could not be written and returns
   * how many task-instance changes that was. Those task instances stay as the database has
   * them (queued or running), and the next scheduler runs them again with a new try number.
   */
  dropUnwritten(): number {
    return this.writer.dropUnwritten();
  }

  close(): void {
    this.retries.close();
    this.timeouts.close();
  }

  // ---- events ----------------------------------------------------------------------

  private applyEvent(event: ExecutorEvent): void {
    if (event.type === 'heartbeat') {
      for (const key of event.keys) {
        const entry = this.tries.get(key);
        if (!entry) continue;
        const ti = entry.run.tis.get(entry.tiId)!;
        this.pending.heartbeat(ti, event.at);
        ti.lastHeartbeatAt = event.at;
      }
      return;
    }
    const entry = this.tries.get(event.key);
    if (!entry && event.type === 'finished' && this.callbacks.finished(this.pending, event)) return;
    if (!entry) {
      // A try we abandoned has ended: its task instance may run again, its slot is free.
      const orphan = event.type === 'finished' ? this.orphans.end(event.key) : undefined;
      if (orphan) this.releaseSlots(orphan);
      return; // a stale try, or a run we no longer hold
    }
    const { run, tiId: id } = entry;
    const ti = run.tis.get(id)!;
    if (event.type === 'task-heartbeat') {
      ti.lastHeartbeatAt = event.at;
      this.pending.heartbeat(ti, event.at);
      return;
    }
    if (event.type === 'started') {
      if (ti.state !== 'queued') return;
      this.setTi(run, { ...ti, state: 'running', startedAt: event.at, pid: event.pid, isolation: event.isolation, lastHeartbeatAt: event.at }, ['queued'], true);
      return;
    }
    // finished
    this.tries.delete(event.key);
    if (!isActive(ti.state)) return;
    this.releaseSlots(ti);
    this.endTry(run, id, event);
  }

  /** Records the end of the current try of a task instance, then decides what follows. */
  private endTry(run: RunState, id: string, given: TryEnd): void {
    const ti = run.tis.get(id)!;
    const { taskId } = ti;
    const task = run.tasks.get(taskId)!;
    if (given.outcome === 'reschedule') {
      this.reschedule(run, ti, given);
      return;
    }
    const event = this.checkMapSource(run, taskId, given);
    let state: TiState;
    let nextRetryAt: number | null = null;
    if (event.outcome === 'success') state = 'success';
    else if (event.outcome === 'skipped') state = 'skipped';
    else if (!event.noRetry && ti.tryNumber < ti.maxTries) {
      state = 'up_for_retry';
      nextRetryAt = event.at + retryDelayMs(task, ti.tryNumber, `${ti.dagId}/${ti.runId}/${taskId}`);
    } else state = 'failed';
    const startedAt = ti.startedAt ?? event.at - event.durationMs;
    const next: TiRow = {
      ...ti, state, nextRetryAt, endedAt: event.at, startedAt, durationMs: event.durationMs,
      exitCode: event.exitCode, signal: event.signal, peakRssBytes: event.usage.peakRssBytes, cpuMs: event.usage.cpuMs,
      error: event.error ? (event.error.code ? `${event.error.code}: ${event.error.message}` : event.error.message) : null,
    };
    this.setTi(run, next, [ti.state]);
    this.callbacks.oweForTry(this.pending, run, ti, next, event);
    // A mapped instance's result is kept even when undefined: the collected results have one per success.
    if (state === 'success' && (event.value !== undefined || ti.mapIndex >= 0)) {
      run.xcoms.set(id, event.value);
      this.pending.xcoms.push({ dagId: ti.dagId, runId: ti.runId, taskId, mapIndex: ti.mapIndex, value: event.value });
    }
    if (state === 'success' && decides(task)) run.decided(taskId, event.value);
    if (state === 'up_for_retry') this.armRetry(run, next);
    else this.onFinished(run, taskId);
  }

  /**
   * A task a mapped task maps over must return something mappable (dag/mapping.ts): else its
   * try fails, with the type or the length named, and may be retried like any failure.
   */
  private checkMapSource(run: RunState, taskId: string, event: TryEnd): TryEnd {
    if (event.outcome !== 'success' || !run.mapSources.has(taskId)) return event;
    const why = unmappableReason(event.value, run.dag.maxMapLength ?? FALLBACK_MAX_MAP_LENGTH);
    if (why === null) return event;
    return { ...event, outcome: 'failed', value: undefined, noRetry: false, error: { name: 'KilnError', code: 'MAP_SOURCE', message: why } };
  }

  /**
   * A reschedule sensor's poke found nothing: up_for_reschedule until `rescheduleAt`, holding
   * no slot. The try number goes back by one, so the next poke is the same try (its log goes
   * on in the same file) and uses no retry.
   */
  private reschedule(run: RunState, ti: TiRow, event: TryEnd): void {
    const next: TiRow = {
      ...ti, state: 'up_for_reschedule', tryNumber: ti.tryNumber - 1, nextRetryAt: event.rescheduleAt ?? event.at,
      endedAt: event.at, startedAt: ti.startedAt ?? event.at - event.durationMs, durationMs: event.durationMs, pid: null,
      exitCode: event.exitCode, signal: event.signal, peakRssBytes: event.usage.peakRssBytes, cpuMs: event.usage.cpuMs, error: null,
    };
    this.setTi(run, next, [ti.state]);
    this.armRetry(run, next);
  }

  /** A task instance finished: decide its downstream tasks now, not at the next tick. */
  private onFinished(run: RunState, taskId: string): void {
    for (const down of run.downstream.get(taskId) ?? []) this.evaluate(run, down);
    this.checkRunDone(run);
  }

  /**
   * Decides a task whose instances have not started, once for all of them: they become
   * scheduled (a mapped task is expanded first), or end skipped / upstream_failed. With
   * `requeue` (a run just adopted), instances already scheduled go back to the ready queue.
   */
  private evaluate(run: RunState, taskId: string, requeue = false): void {
    const { counts } = run.byTask.get(taskId)!;
    if (counts.none === 0 && counts.scheduled === 0) return;
    const decision = run.decide(taskId);
    if (decision === 'wait') return;
    if (decision !== 'run') {
      this.settle(run, taskId, decision, null);
      return;
    }
    const task = run.tasks.get(taskId)!;
    if (task.map !== undefined && counts.none > 0 && !this.mapping.expand(run, taskId)) return;
    if (counts.none === 0 && !requeue) return;
    for (const ti of run.instances(taskId)) {
      if (ti.state === 'none') this.setTi(run, { ...ti, state: 'scheduled' }, ['none']);
      else if (ti.state !== 'scheduled') continue;
      this.ready.push(run, tiIdOf(ti), task.priorityWeight);
    }
  }

  /** Ends every instance of a task that has not started, without running it; then decides what follows. */
  private settle(run: RunState, taskId: string, state: 'skipped' | 'upstream_failed' | 'failed', error: string | null): void {
    const now = this.now();
    for (const ti of unstarted(run, taskId)) {
      this.setTi(run, { ...ti, state, startedAt: ti.startedAt ?? now, endedAt: now, durationMs: 0, error: error ?? ti.error }, [ti.state]);
      this.ready.remove(run, tiIdOf(ti));
    }
    this.onFinished(run, taskId);
  }

  private checkRunDone(run: RunState): void {
    const outcome = run.outcome();
    if (!outcome || run.run.state === outcome) return;
    const endedAt = this.now();
    const failureReason = outcome === 'failed' ? (run.timedOut ? 'timed_out' : 'task_failed') : null;
    run.run = { ...run.run, state: outcome, endedAt, failureReason };
    this.callbacks.oweForRun(this.pending, run);
    // Only from 'running': a run set back to 'queued' by `kiln tasks clear` must not be ended.
    this.pending.runs.push({ run, write: { dagId: run.run.dagId, runId: run.run.runId, expectStates: ['running'], set: { state: outcome, endedAt, failureReason } } });
    this.pending.finishedRuns.push(run);
  }

  // ---- retries ---------------------------------------------------------------------

  private armRetry(run: RunState, ti: TiRow): void {
    this.retries.arm(run, tiIdOf(ti), ti.nextRetryAt ?? this.now());
  }

  private retryDue(due: ReadonlyArray<{ run: RunState; tiId: string }>): void {
    for (const { run, tiId: id } of due) {
      const ti = run.tis.get(id);
      if (ti === undefined || (ti.state !== 'up_for_retry' && ti.state !== 'up_for_reschedule') || !this.runs.has(run.key)) continue;
      this.setTi(run, { ...ti, state: 'scheduled' }, [ti.state]);
      this.ready.push(run, id, run.tasks.get(ti.taskId)!.priorityWeight);
    }
    this.requestFlush();
  }

  // ---- dispatch --------------------------------------------------------------------

  /** Moves ready task instances to queued while the executor, run and pool have room. */
  private dispatch(): void {
    if (this.frozen) return;
    let free = this.options.executor.freeSlots() - this.pending.works.length;
    // Callbacks first: their rows are committed already, and they hold nothing up downstream.
    if (free > 0 && this.callbacks.waitingCount > 0) {
      for (const work of this.callbacks.take(free)) {
        this.options.executor.submit(work);
        free--;
      }
    }
    if (free <= 0 || this.ready.size === 0) return;
    const now = this.now();
    this.ready.drain((run, id) => {
      if (free <= 0) return 'stop';
      if (run.stale) return 'drop';
      const ti = run.tis.get(id);
      if (ti === undefined || ti.state !== 'scheduled') return 'drop';
      if (run.active + this.orphans.inRun(run.key) >= run.dag.maxActiveTasks) return 'keep';
      if (this.orphans.blocksTask(`${run.key}\u0000${id}`)) return 'keep';
      if (!this.pools.fits(ti)) return 'keep';
      const { taskId } = ti;
      const task = run.tasks.get(taskId)!;
      if (atTaskLimit(run, task, this.runs.values())) return 'keep';
      let item: unknown;
      if (ti.mapIndex >= 0) {
        const items = this.mapping.itemsOf(run, taskId);
        if (items === undefined) return 'keep'; // read from the store first (a run loaded after a restart)
        item = items[ti.mapIndex];
      }
      const isolation = task.isolation ?? this.options.defaultIsolation;
      const queued = queuedRow(ti, task, now, this.options.schedulerId, isolation);
      const { tryNumber } = queued;
      if (this.options.poolsInStore) {
        run.replace(queued);
        this.pending.setQueued(run, ti, queued, ti);
      } else this.setTi(run, queued, ['scheduled']);
      this.pools.take(ti);
      this.tries.set(taskKey(ti.dagId, ti.runId, taskId, tryNumber, ti.mapIndex), { run, tiId: id });
      const work = taskWork(run, queued, isolation, taskLogFile(this.options.logsFolder, ti.dagId, ti.runId, taskId, tryNumber, ti.mapIndex), this.options.sourcesFolder);
      if (ti.mapIndex >= 0) work.item = item;
      this.pending.works.push({ run, work });
      free--;
      return 'drop';
    });
  }

  private releaseSlots(ti: Pick<TiRow, 'pool' | 'poolSlots'>): void {
    this.pools.release(ti);
  }

  /**
   * Gives up on the current try of a task instance: the executor cancels it and it becomes
   * an orphan (see orphans.ts). A try still waiting in the pending batch was never
   * submitted: it is just dropped.
   */
  private abandonTry(run: RunState, ti: TiRow, reason: string): void {
    const key = taskKey(ti.dagId, ti.runId, ti.taskId, ti.tryNumber, ti.mapIndex);
    this.tries.delete(key);
    // Not yet submitted: in the pending batch, or in the one waiting for the database.
    for (const works of this.writer.unsentWorks()) {
      const unsent = works.findIndex((w) => w.work.key === key);
      if (unsent < 0) continue;
      works.splice(unsent, 1);
      this.releaseSlots(ti);
      return;
    }
    const until = this.now() + (this.options.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS);
    this.orphans.add(key, { runKey: run.key, tiKey: `${run.key}\u0000${tiIdOf(ti)}`, pool: ti.pool, poolSlots: ti.poolSlots, until });
    this.options.executor.cancel(key, reason);
  }

  // ---- persistence -----------------------------------------------------------------

  /**
   * Records a row change in memory and in the pending batch. Several changes to one task
   * instance between two flushes collapse into one write: the first expectation (what the
   * database holds now) with the last row.
   */
  private setTi(run: RunState, next: TiRow, expectStates: readonly TiState[], lazy = false): void {
    const prev = run.tis.get(tiIdOf(next))!;
    run.replace(next);
    this.pending.setTi(run, prev, next, expectStates, lazy);
  }

  private requestFlush(urgent = true): void {
    this.writer.requestFlush(urgent);
  }

  /** A read for a runner (XCom): while the database is away it waits for it rather than fail the try. */
  private async readWaitingOut<T>(read: () => Promise<T>): Promise<T> {
    const backoff = new Backoff();
    for (;;) {
      try {
        const value = await read();
        this.outage.ok();
        return value;
      } catch (err) {
        if (this.detached || !this.outage.failed(err)) throw err;
        await new Promise((resolve) => setTimeout(resolve, backoff.next()));
      }
    }
  }

  /**
   * After a batch was written: runs whose compare-and-sets failed go stale, tries refused a
   * pool slot go back to the ready queue, owed callbacks are queued; then the work of the
   * batch is submitted (only now that its queued rows are committed) and finished runs are
   * announced.
   */
  private committed(p: PendingWrites, answer: { batch: WriteBatch; written: WriteBatchResult; result: WriteBatchResult } | null, usedAtWrite: ReadonlyMap<string, number> | undefined): void {
    const tiEntries = [...p.tis.values()];
    const unsent = new Set<string>();
    if (answer !== null) {
      const { batch, written, result } = answer;
      // Retried, and the first write had queued a try before the connection broke: the store
      // counted that try against its own pool and refused it again, but it is queued.
      const refused = (result.poolFull ?? []).filter((i) => !(result.tis[i] && !written.tis[i]));
      if (result.poolRoom !== undefined) this.pools.capAt(result.poolRoom, usedAtWrite, refused.map((i) => tiEntries[i]!.write.row));
      // Last first: each goes back to the head of its priority, so they keep their order.
      for (const i of refused.toReversed()) {
        const { run, write } = tiEntries[i]!;
        unsent.add(this.slotRefused(run, write.row, write.ifPoolFull!));
        write.row = write.ifPoolFull!; // what was written, for onTaskChange below
      }
      result.tis.forEach((applied, i) => {
        if (!applied) this.markStale(tiEntries[i]!.run);
      });
      result.runs.forEach((applied, i) => {
        if (!applied) this.markStale(p.runs[i]!.run);
      });
      // Callbacks whose change applied run now: a flush more submits them.
      if (this.callbacks.afterCommit(p, batch, result.tis, result.runs)) this.requestFlush();
    }
    for (const { work, run } of p.works) {
      if (run.stale || unsent.has(work.key)) continue;
      this.options.executor.submit(work);
    }
    for (const e of tiEntries) if (!e.run.stale) this.options.onTaskChange?.(e.run, e.write.row);
    for (const run of p.finishedRuns) {
      if (run.stale) continue;
      this.release(run);
      this.options.onRunFinished?.(run);
      for (const w of this.runWaiters.get(run.key) ?? []) w.resolve(run);
      this.runWaiters.delete(run.key);
    }
  }

  /**
   * The store found no room in the pool of a try we queued (another scheduler took the slots
   * first): the try never was, its task instance is scheduled again (the store wrote
   * `scheduled`) and waits for room at the head of the ready queue (among its priority), where
   * it was. Returns the try's key.
   */
  private slotRefused(run: RunState, queued: TiRow, scheduled: TiRow): string {
    const key = taskKey(queued.dagId, queued.runId, queued.taskId, queued.tryNumber, queued.mapIndex);
    this.tries.delete(key);
    this.releaseSlots(queued);
    if (run.tis.get(tiIdOf(queued)) === queued) {
      run.replace(scheduled);
      if (this.runs.get(run.key) === run && !run.stale) this.ready.push(run, tiIdOf(queued), run.tasks.get(queued.taskId)!.priorityWeight, true);
    }
    return key;
  }


  /**
   * The run passed its dagrunTimeout: running tries are cancelled, every unfinished task
   * instance becomes skipped, and the run fails with reason timed_out.
   */
  private timeOut(run: RunState): void {
    if (this.runs.get(run.key) !== run || run.stale || run.unfinished === 0) return;
    run.timedOut = true;
    const now = this.now();
    const why = `the run passed its dagrunTimeout (${run.dag.dagrunTimeoutMs} ms)`;
    for (const ti of [...run.tis.values()]) {
      if (isFinished(ti.state)) continue;
      if (isActive(ti.state)) this.abandonTry(run, ti, why);
      this.ready.remove(run, tiIdOf(ti));
      this.retries.remove(run, tiIdOf(ti));
      this.setTi(run, {
        ...ti, state: 'skipped', startedAt: ti.startedAt ?? now, endedAt: now, durationMs: ti.startedAt === null ? 0 : now - ti.startedAt,
        error: `stopped: ${why}`, nextRetryAt: null,
      }, [ti.state]);
    }
    this.checkRunDone(run);
    this.requestFlush();
  }

  private markStale(run: RunState): void {
    if (run.stale) return;
    run.stale = true;
    for (const ti of run.tis.values()) if (isActive(ti.state)) this.abandonTry(run, ti, 'the run was changed by another process');
    this.release(run);
    this.options.onRunStale?.(run);
    for (const w of this.runWaiters.get(run.key) ?? []) w.reject(staleError(run));
    this.runWaiters.delete(run.key);
  }

  /** See refresh(). Runs inside flush(), so none of our writes is in flight meanwhile. */
  private async applyReloads(): Promise<void> {
    const keys = [...this.reloads];
    this.reloads.clear();
    for (const key of keys) {
      const run = this.runs.get(key);
      if (!run) continue;
      const { dagId, runId } = run.run;
      const row = await this.options.store.getRun(dagId, runId);
      const still = (): boolean => this.runs.get(key) === run && !run.stale && !this.pending.runs.some((w) => w.run === run);
      // A run write of ours still pending explains any difference; it decides by itself.
      if (!still() || row?.state === run.run.state) continue;
      if (row?.state !== 'queued') {
        this.markStale(run);
        continue;
      }
      const tis = await this.options.store.getTaskInstances(dagId, runId);
      if (still()) this.merge(run, tis);
    }
  }

  /** Takes the database's task instances of a run that was set back to 'queued' under us. */
  private merge(run: RunState, tis: readonly TiRow[]): void {
    const diff = diffReloaded(run, tis, (id) => this.pending.hasTi(run, id));
    if (diff.stale) {
      this.markStale(run);
      return;
    }
    const { changed } = diff;
    for (const db of changed) {
      const id = tiIdOf(db);
      const mem = run.tis.get(id)!;
      if (isActive(mem.state)) this.abandonTry(run, mem, `task instance changed by another process (now ${db.state})`);
      run.replace(db);
      this.ready.remove(run, id);
      this.retries.remove(run, id);
      // Changed elsewhere: what it returned here is no longer its result (read again from the store when needed).
      run.xcoms.delete(id);
      if (db.state !== 'success') run.decisions.delete(db.taskId);
      if (db.mapIndex >= 0) run.mapItems.delete(db.taskId);
    }
    run.run = { ...run.run, state: 'running' };
    run.timedOut = false; // cleared after its timeout: it runs again
    this.pending.runs.push({ run, write: { dagId: run.run.dagId, runId: run.run.runId, expectStates: ['queued'], set: { state: 'running' } } });
    for (const ti of changed) {
      if (ti.state === 'up_for_retry' || ti.state === 'up_for_reschedule') this.armRetry(run, ti);
      else if (isFinished(ti.state)) this.onFinished(run, ti.taskId);
    }
    for (const taskId of run.byTask.keys()) this.evaluate(run, taskId);
    this.checkRunDone(run);
  }

  /** A write failed for a reason other than a lost connection: memory is ahead of the database, nothing here can be trusted. */
  private writeFailed(err: unknown): void {
    this.options.onError?.(err);
    for (const [key, waiters] of this.runWaiters) {
      this.runWaiters.delete(key);
      for (const w of waiters) w.reject(err);
    }
  }
}


function staleError(run: RunState): KilnError {
  return new KilnError('STORE', `run '${run.run.runId}' of DAG '${run.run.dagId}' was changed by another process (cleared, marked or taken over) while this one drove it`);
}
