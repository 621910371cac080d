/**
 * The supervisor: one executor for all three isolations. It owns everything about a try's
 * liveness (the runner only runs it):
 *
 *   submit -> a worker (pool: thread | process) or a fresh process (spawn)
 *          -> 'started'; timers for timeout / heartbeat timeout; RSS/CPU sampling
 *   runner messages -> 'task-heartbeat', onLog, XCom answers from taskApi
 *   reply  -> 'finished' with the runner's result        (worker back to its pool)
 *   death  -> 'finished' failed WORKER_EXITED, explained (worker replaced, crash loops slowed)
 *   timeout / heartbeat timeout / cancel / stop
 *          -> 'cancel' to the runner (ctx.signal aborts), after killGraceMs a kill of the
 *             thread or the whole process tree; 'finished' once it is gone
 *
 * Invariant: exactly one 'finished' per submitted key, whatever happens (finish() is the
 * only place that emits it, and it is idempotent per task).
 */
import { appendFailureToLog } from './failure-log.js';
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ISOLATIONS, type Isolation } from '../dag/types.js';
import { KilnError, errorMessage } from '../errors.js';
import { serializeError } from '../protocol/errors.js';
import type { ResourceUsage, RunnerMessage, SerializedError, TaskWork } from '../protocol/messages.js';
import type { RunReply, RunRequest } from '../../workers/pool-protocol.js';
import { baseChildEnv, grantedEnv } from './env.js';
import { explainExit } from './exit-reason.js';
import { settingsFrom, type LocalExecutorOptions, type LocalSettings } from './options.js';
import { WorkerPool } from './pool.js';
import { ProcessWorker } from './runtimes/process.js';
import { ThreadWorker } from './runtimes/thread.js';
import { WorkerGoneError, workersDir, type PooledWorker, type TaskHost, type WorkerConfig, type WorkerExit } from './runtimes/types.js';
import { TaskRun, failed, killedHow, noteInTaskLog, type Finish, type StopReason, type TaskRunOwner } from './task-run.js';
import type { DagModule, Executor, ExecutorEvent } from './types.js';
import { UsageSampler } from './usage-sampler.js';
import { heapLimitMbFor } from './memory-limits.js';
import { ThreadMemoryGuard } from './thread-memory-guard.js';

export type { LocalExecutorOptions } from './options.js';

type PooledIsolation = Exclude<Isolation, 'spawn'>;
/** Consecutive failed worker starts after which tries waiting for that pool are failed. */
const MAX_START_FAILURES = 3;
/** After stop() kills, how long to wait beyond killGraceMs for the exits before giving up on them. */
const STOP_BACKSTOP_MS = 10_000;
/** How often kiln's RSS is weighed against the memory limits of running thread tries. */
const THREAD_GUARD_INTERVAL_MS = 100;

/** Creates the built-in executor; `options.defaultIsolation` names the pool start() pre-warms. */
export function createLocalExecutor(options: LocalExecutorOptions): Executor {
  return new LocalExecutor(settingsFrom(options));
}

class LocalExecutor implements Executor, TaskRunOwner {
  readonly name = 'local';
  private readonly tasks = new Map<string, TaskRun>();
  private readonly pools = new Map<PooledIsolation, WorkerPool>();
  private readonly sampler: UsageSampler;
  private readonly threadGuard: ThreadMemoryGuard;
  /** Environment of pooled workers: kiln's minus protected variables, taken once. */
  private readonly workerEnv = baseChildEnv();
  private running = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly s: LocalSettings) {
    this.sampler = new UsageSampler(s.usageSampleIntervalMs);
    this.threadGuard = new ThreadMemoryGuard(THREAD_GUARD_INTERVAL_MS, (task, growthBytes) => this.stopTask(task, {
      code: 'TASK_MEMORY_LIMIT',
      message: `memory limit: this thread task and the processes it started grew kiln's memory by ${mib(growthBytes)}, past its maxTaskMemoryBytes ${mib(task.memoryLimitBytes)} `
        + `(memory outside the JavaScript heap, such as Buffers; the heap itself is capped at ${this.s.workerHeapLimitMb} MB)`,
      noRetry: false,
    }, 0));
  }

  async start(): Promise<void> {
    mkdirSync(this.s.logDir, { recursive: true });
    this.ensureHeartbeats();
    const isolation = this.s.defaultIsolation;
    if (isolation === 'spawn') {
      this.spawnRuntime ??= await import('./runtimes/spawn.js'); // nothing to pre-warm: every try starts its own process
      return;
    }
    // Ready once one worker is: the rest warm up while the caller parses and dispatches.
    const { started, errors } = await this.pool(isolation).warm(this.s.warmWorkers, { firstOnly: true });
    if (started === 0 && errors[0] !== undefined) {
      throw new KilnError('EXECUTOR', `could not start any ${isolation} worker: ${errorMessage(errors[0])}`, { cause: errors[0] });
    }
  }

  freeSlots(): number {
    return this.stopping ? 0 : this.s.parallelism - this.running;
  }

  submit(work: TaskWork): void {
    if (this.stopping) throw new KilnError('EXECUTOR', `the executor is stopping; task ${work.key} was not started`);
    if (this.running >= this.s.parallelism) {
      throw new KilnError('EXECUTOR', `no free slot for task ${work.key}: ${this.running} of ${this.s.parallelism} running; submit only while freeSlots() > 0`);
    }
    if (this.tasks.has(work.key)) throw new KilnError('EXECUTOR', `task ${work.key} is already running in this executor`);
    const isolation = work.isolation ?? this.s.defaultIsolation;
    if (!ISOLATIONS.includes(isolation)) throw new KilnError('EXECUTOR', `task ${work.key}: unknown isolation '${String(isolation)}'`);
    const task = new TaskRun(work, isolation, this, work.maxTaskMemoryBytes ?? this.s.maxTaskMemoryBytes);
    this.tasks.set(work.key, task);
    this.running++;
    this.ensureHeartbeats();
    if (isolation === 'spawn') this.runSpawned(task);
    else this.pool(isolation).acquire(task);
  }

  cancel(key: string, reason: string): void {
    const task = this.tasks.get(key);
    if (task !== undefined) this.stopTask(task, { code: 'TASK_CANCELLED', message: `cancelled: ${reason}`, noRetry: true });
  }

  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopped ??= this.shutdown(options.drainMs ?? 0);
    return this.stopped;
  }

  /** Every pooled worker (thread and process) imports the module ahead of its first task. */
  preload(module: DagModule): void {
    for (const pool of this.pools.values()) pool.greet({ __kiln: 1, type: 'preload', ...module });
  }

  workerCounts(): Array<{ isolation: Isolation; workers: number; idle: number }> {
    return [...this.pools].map(([isolation, pool]) => ({ isolation, ...pool.counts() }));
  }

  // ---- starting a try -------------------------------------------------------------------

  /** @internal the pool hands a worker to a waiting try */
  runOnWorker(task: TaskRun, worker: PooledWorker): void {
    task.worker = worker;
    const env = grantedEnv(task.work.env);
    const req: RunRequest = env === undefined ? { __kiln: 1, type: 'run', work: task.work } : { __kiln: 1, type: 'run', work: task.work, env };
    this.begin(task, worker, worker.run(req, (msg) => this.onRunnerMessage(task, msg)));
  }

  /** @internal a new RSS sample of a process or spawned try: kill it past its memory limit */
  sampled(task: TaskRun): void {
    const rss = task.lastRssBytes;
    if (rss === null || rss <= task.memoryLimitBytes || task.finished || task.stopReason !== null) return;
    const who = task.isolation === 'spawn' ? 'the task process' : 'the worker process';
    this.stopTask(task, {
      code: 'TASK_MEMORY_LIMIT',
      message: `memory limit: ${who} and its children used ${mib(rss)} (RSS), past the task's maxTaskMemoryBytes ${mib(task.memoryLimitBytes)}`,
      noRetry: false,
    }, 0);
  }

  /** @internal the pool cannot start workers */
  failUnstarted(task: TaskRun, err: Error): void {
    this.finish(task, failed({ code: 'EXECUTOR', message: `could not start a ${task.isolation} worker for the task: ${errorMessage(err)}` }));
  }

  /**
   * The spawn runtime (execa) loads on the first spawned try, not at start: it is the
   * heaviest import of all (~100 ms) and most runs never spawn.
   */
  private spawnRuntime: typeof import('./runtimes/spawn.js') | null = null;

  private runSpawned(task: TaskRun): void {
    const runtime = this.spawnRuntime;
    if (runtime === null) {
      import('./runtimes/spawn.js').then(
        (loaded) => {
          this.spawnRuntime = loaded;
          if (!task.finished) this.runSpawned(task); // cancelled or stopped meanwhile: finished already
        },
        (err: unknown) => this.finish(task, failed({ code: 'EXECUTOR', message: `could not load the spawn runtime: ${errorMessage(err)}` })),
      );
      return;
    }
    const env = { ...baseChildEnv(), ...grantedEnv(task.work.env) };
    let spawned: InstanceType<typeof runtime.SpawnedTask>;
    try {
      // A spawned process is the task's alone: its heap follows the task's own memory limit.
      const heapLimitMb = task.work.maxTaskMemoryBytes == null ? this.s.workerHeapLimitMb : heapLimitMbFor(task.work.maxTaskMemoryBytes);
      spawned = new runtime.SpawnedTask(task.work, { env, heapLimitMb, killGraceMs: this.s.killGraceMs }, (msg) => this.onRunnerMessage(task, msg));
    } catch (err) {
      queueMicrotask(() => this.finish(task, failed({ code: 'EXECUTOR', message: `could not spawn the task process: ${errorMessage(err)}` })));
      return;
    }
    this.begin(task, spawned, spawned.done);
  }

  private begin(task: TaskRun, host: TaskHost, done: Promise<RunReply>): void {
    task.host = host;
    task.startedAt = performance.now();
    const { key, timeoutMs } = task.work;
    // Events never fire from inside submit(); a microtask still lands before any reply.
    queueMicrotask(() => this.emit({ type: 'started', key, isolation: task.isolation, pid: host.pid, threadId: host.threadId, at: Date.now() }));
    if (timeoutMs !== null) {
      task.timeoutTimer = setTimeout(() => this.stopTask(task, { code: 'TASK_TIMEOUT', message: `timed out after ${timeoutMs} ms`, noRetry: false }), timeoutMs);
    }
    // The heartbeat clock starts when the runner reports the task function began ('started',
    // sent only for tries with a heartbeatTimeout): booting a spawned runner or importing the
    // DAG is not the task's silence. A runner that never gets there meets `timeout` instead.
    if (host.samplePid !== null) this.sampler.add(task);
    if (host instanceof ThreadWorker) this.threadGuard.add({ task, busyShare: () => host.busyShare(), childRssBytes: () => host.childRssBytes() });
    done.then((reply) => this.onReply(task, reply), (err: unknown) => this.onGone(task, err));
  }

  // ---- while it runs ----------------------------------------------------------------------

  private armHeartbeatTimeout(task: TaskRun, heartbeatTimeoutMs: number): void {
    task.heartbeatTimer = setTimeout(() => this.stopTask(task, {
      code: 'TASK_HEARTBEAT_TIMEOUT',
      message: `no heartbeat for ${heartbeatTimeoutMs} ms: the task promised to call ctx.heartbeat() at least that often`,
      noRetry: false,
    }), heartbeatTimeoutMs);
  }

  private onRunnerMessage(task: TaskRun, msg: RunnerMessage): void {
    if (task.finished) return;
    switch (msg.type) {
      case 'heartbeat':
        task.heartbeatTimer?.refresh();
        this.emit(msg.details === undefined
          ? { type: 'task-heartbeat', key: msg.key, at: Date.now() }
          : { type: 'task-heartbeat', key: msg.key, details: msg.details, at: Date.now() });
        break;
      case 'log':
        this.s.onLog?.(msg.key, msg.level, msg.line);
        break;
      case 'xcom-pull':
        this.answerXcom(task, msg.requestId, msg.taskId);
        break;
      case 'started':
        if (task.work.heartbeatTimeoutMs !== null && task.heartbeatTimer === null) this.armHeartbeatTimeout(task, task.work.heartbeatTimeoutMs);
        break;
      default:
        break; // 'finished' is handled by the runtimes
    }
  }

  private answerXcom(task: TaskRun, requestId: number, taskId: string): void {
    const { dagId, runId } = task.work;
    let pending: Promise<unknown>;
    try {
      pending = Promise.resolve(this.s.taskApi.xcom(dagId, runId, taskId));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (value) => {
        if (task.finished) return;
        task.host?.send(value === undefined ? { __kiln: 1, type: 'xcom-value', requestId } : { __kiln: 1, type: 'xcom-value', requestId, value });
      },
      (err: unknown) => {
        if (!task.finished) task.host?.send({ __kiln: 1, type: 'xcom-value', requestId, error: serializeError(err) });
      },
    );
  }

  /** Timeout, heartbeat timeout, cancel, stop: the AbortSignal first, the kill after graceMs. */
  private stopTask(task: TaskRun, reason: StopReason, graceMs = this.s.killGraceMs): void {
    if (task.finished) return;
    if (task.stopReason !== null) {
      if (graceMs === 0) task.host?.kill(); // stop() does not wait out an earlier grace period
      return;
    }
    task.stopReason = reason;
    clearTimer(task.timeoutTimer);
    clearTimer(task.heartbeatTimer);
    const host = task.host;
    if (host === null) {
      // Still waiting for a worker: nothing runs yet.
      this.pools.get(task.isolation as PooledIsolation)?.cancelWait(task);
      this.finish(task, failed(reason, reason.noRetry));
      return;
    }
    host.send({ __kiln: 1, type: 'cancel', key: task.work.key, reason: reason.message });
    if (graceMs === 0) host.kill();
    else task.graceTimer = setTimeout(() => host.kill(), graceMs);
  }

  // ---- the end of a try --------------------------------------------------------------------

  private onReply(task: TaskRun, reply: RunReply): void {
    const { result } = reply;
    const host = task.host!;
    const stop = task.stopReason;
    if (stop !== null) host.reapStrays(); // it ended on its own after the AbortSignal
    if (task.worker !== null) this.pools.get(task.isolation as PooledIsolation)!.release(task.worker, 'ok');
    const usage = this.usageOf(task, result.usage);
    if (stop !== null) {
      this.finish(task, { ...failed(stop, stop.noRetry), exitCode: host.exitCode, signal: host.signal, usage });
      return;
    }
    this.finish(task, {
      outcome: result.outcome,
      noRetry: result.noRetry === true,
      value: result.value,
      ...(result.rescheduleAt !== undefined ? { rescheduleAt: result.rescheduleAt } : {}),
      error: result.error ?? null,
      exitCode: host.exitCode,
      signal: host.signal,
      usage,
    });
  }

  private onGone(task: TaskRun, err: unknown): void {
    const exit: WorkerExit = err instanceof WorkerGoneError ? err.exit : { exitCode: null, signal: null, cause: err instanceof Error ? err : new Error(String(err)) };
    const stop = task.stopReason;
    if (task.worker !== null) this.pools.get(task.isolation as PooledIsolation)!.release(task.worker, stop !== null ? 'killed' : 'crashed');
    const error: SerializedError = stop !== null
      ? { name: 'KilnError', code: stop.code, message: `${stop.message}; ${killedHow(task.isolation, exit)}` }
      : {
          name: 'KilnError',
          code: 'WORKER_EXITED',
          message: explainExit(task.isolation, exit, {
            heapLimitMb: this.s.workerHeapLimitMb,
            lastRssBytes: task.lastRssBytes,
            maxWorkerMemoryBytes: this.s.maxWorkerMemoryBytes,
          }),
        };
    noteInTaskLog(task.work.logFile, error);
    this.finish(task, { outcome: 'failed', noRetry: stop?.noRetry ?? false, error, exitCode: exit.exitCode, signal: exit.signal, usage: this.usageOf(task) });
  }

  /**
   * Threads: the runner's own figures (isolate heap, busy time; see workers/runner-core.ts).
   * Processes: the runner's end figures raised by the supervisor's pidusage samples; for a
   * killed spawned process, the samples alone (its CPU time is the process's whole life).
   */
  private usageOf(task: TaskRun, reported?: ResourceUsage): ResourceUsage {
    let peakRssBytes = reported?.peakRssBytes ?? null;
    if (task.peakRssBytes !== null) peakRssBytes = Math.max(peakRssBytes ?? 0, task.peakRssBytes);
    const cpuMs = reported?.cpuMs ?? (task.isolation === 'spawn' ? task.sampledCpuMs : null);
    return { peakRssBytes, cpuMs };
  }

  /** The only place a 'finished' event is emitted. */
  private finish(task: TaskRun, f: Finish): void {
    if (task.finished) return;
    task.finished = true;
    clearTimer(task.timeoutTimer);
    clearTimer(task.heartbeatTimer);
    clearTimer(task.graceTimer);
    this.sampler.remove(task);
    if (task.isolation === 'thread') this.threadGuard.remove(task);
    this.tasks.delete(task.work.key);
    this.running--;
    const durationMs = task.host === null ? 0 : Math.round((performance.now() - task.startedAt) * 1000) / 1000;
    const event: ExecutorEvent = {
      type: 'finished',
      key: task.work.key,
      outcome: f.outcome,
      noRetry: f.noRetry,
      error: f.error,
      exitCode: f.exitCode,
      signal: f.signal,
      usage: f.usage,
      durationMs,
      at: Date.now(),
    };
    if (f.value !== undefined) event.value = f.value;
    if (f.rescheduleAt !== undefined) event.rescheduleAt = f.rescheduleAt;
    if (f.outcome === 'failed') appendFailureToLog(task.work.logFile, f.error, f.exitCode, f.signal);
    this.emit(event);
    if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private pool(isolation: PooledIsolation): WorkerPool {
    let pool = this.pools.get(isolation);
    if (pool === undefined) {
      const config: WorkerConfig = {
        entry: new URL(`${isolation}-entry.js`, workersDir),
        env: this.workerEnv,
        heapLimitMb: this.s.workerHeapLimitMb,
        maxDagVersions: this.s.maxDagVersionsPerWorker,
        startTimeoutMs: this.s.workerStartTimeoutMs,
        killGraceMs: this.s.killGraceMs,
      };
      pool = new WorkerPool({
        maxWorkers: this.s.parallelism,
        create: () => (isolation === 'thread' ? new ThreadWorker(config) : new ProcessWorker(config)),
        maxTasksPerWorker: this.s.maxTasksPerWorker,
        maxWorkerMemoryBytes: this.s.maxWorkerMemoryBytes,
        respawnDelayMs: this.s.respawnDelayMs,
        maxRespawnDelayMs: this.s.maxRespawnDelayMs,
        maxStartFailures: MAX_START_FAILURES,
        onRecycle: this.s.onWorkerRecycled === null ? undefined : (reason) => this.s.onWorkerRecycled?.(isolation, reason),
      });
      if (this.stopping) pool.freeze();
      this.pools.set(isolation, pool);
    }
    return pool;
  }

  /** One timer for the liveness of every running try: the scheduler writes it in one batch. */
  private ensureHeartbeats(): void {
    if (this.heartbeatTimer !== null || this.stopping) return;
    this.heartbeatTimer = setInterval(() => {
      const keys: string[] = [];
      for (const task of this.tasks.values()) if (task.host?.alive) keys.push(task.work.key);
      if (keys.length > 0) this.emit({ type: 'heartbeat', keys, at: Date.now() });
    }, this.s.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private emit(event: ExecutorEvent): void {
    try {
      this.s.onEvent(event);
    } catch (err) {
      // A listener that throws must not break supervision of the other tries.
      process.emitWarning(`kiln executor: onEvent threw on a '${event.type}' event: ${errorMessage(err)}`);
    }
  }

  private whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const pool of this.pools.values()) pool.freeze();
    const notStarted: StopReason = { code: 'TASK_CANCELLED', message: 'kiln stopped before the task started', noRetry: false };
    for (const task of [...this.tasks.values()]) if (task.host === null) this.stopTask(task, notStarted, 0);
    if (this.running > 0 && drainMs > 0) await raceTimeout(this.whenIdle(), drainMs);
    const interrupted: StopReason = { code: 'TASK_CANCELLED', message: 'kiln stopped before the task finished', noRetry: false };
    for (const task of [...this.tasks.values()]) this.stopTask(task, interrupted, 0);
    await raceTimeout(this.whenIdle(), this.s.killGraceMs + STOP_BACKSTOP_MS);
    for (const task of [...this.tasks.values()]) {
      this.finish(task, failed({ code: 'WORKER_EXITED', message: 'kiln stopped and the task did not exit after it was killed' }));
    }
    clearTimer(this.heartbeatTimer);
    this.sampler.stop();
    this.threadGuard.stop();
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
  }
}

function clearTimer(timer: NodeJS.Timeout | null): void {
  if (timer !== null) clearTimeout(timer);
}

function raceTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}
