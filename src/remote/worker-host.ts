/**
 * A worker host (`kiln worker`): consumes BullMQ queues and runs each job's try through
 * kiln's local supervisor, unchanged (pools, time limits, kills, memory limits, logs). It
 * never sees the database: XCom values come from the scheduler over Redis.
 *
 *   job in     -> already run or running here (a redelivery)? its outcome, no second copy
 *              -> fenced (cancelled before it started)? a cancelled outcome, nothing runs
 *              -> wait for a slot (shared by every queue), submit to the local executor
 *   supervisor -> 'started' / heartbeats to the scheduler's stream; 'finished' is a hint on
 *                 the stream, then the job's return value
 *   liveness   -> a beat in Redis (a record with a counter); a lost job lock, or this
 *                 process stopped past zombieTimeoutMs, cancels the tries concerned: the
 *                 scheduler has given them up by then
 *   watchdog   -> a BullMQ Worker that stopped, or takes no job while jobs wait and slots
 *                 are free (after a Redis reconnect, bullmq #2964), is replaced
 */
import { hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Job, Worker } from 'bullmq';
import type { Isolation } from '../dag/types.js';
import { createLocalExecutor } from '../executor/local-executor.js';
import type { Executor, ExecutorEvent, ExecutorOptions, WorkerRecycleReason } from '../executor/types.js';
import { deserializeError } from '../protocol/errors.js';
import type { TaskWork } from '../protocol/messages.js';
import { ConsumerWatchdog } from './consumer-watchdog.js';
import { FilePresence } from './file-presence.js';
import { readLogTail } from './log-tail.js';
import { cancelled, endOfHostCancel, failedEvent } from './outcomes.js';
import { SlotGate } from './slot-gate.js';
import { connectRedis, loadBullmq, redactUrl, StreamReader, xadd, type Bullmq, type Redis } from './redis.js';
import {
  BULL_PREFIX, HOSTS_KEY, cancelKey, decode, encode, hostInbox, hostKey,
  type FinishedEvent, type HostCommand, type HostEvent, type HostRecord, type RemoteJob, type RemoteResult, type StartedReport,
} from './wire.js';

export interface WorkerHostOptions {
  redisUrl: string;
  queues: string[];
  /** Tries running at once on this host, across its queues. */
  slots: number;
  name: string;
  /** The pool pre-warmed, and the isolation of work that names none. */
  isolation: Isolation;
  logsFolder: string;
  dagsFolder: string;
  zombieTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** The local supervisor's own settings (recycling, memory limits, kill grace). */
  local: Pick<ExecutorOptions, 'maxTasksPerWorker' | 'maxWorkerMemoryBytes' | 'maxTaskMemoryBytes' | 'killGraceMs' | 'extra'>;
  log: (message: string) => void;
  /** Optional (metrics, wired by the app layer): sees the tries this host runs and its pools. */
  observe?: LocalObserver;
}

/**
 * What `kiln worker --metrics` hooks into the local supervisor, as the scheduler's metrics
 * hook into its executor: the executor as seen (hand-overs, pool sizes), its events and its
 * pool recycles.
 */
export interface LocalObserver {
  executor(executor: Executor): Executor;
  event(event: ExecutorEvent): void;
  workerRecycled(isolation: Isolation, reason: WorkerRecycleReason): void;
}

/** Outcomes remembered (without their log) to answer a redelivered job without running it again. */
const DONE_REMEMBERED = 1_000;
const XCOM_TIMEOUT_MS = 60_000;

interface HostTry {
  jobId: string;
  key: string;
  /** The stream of the scheduler that submitted it. */
  events: string;
  work: TaskWork | null;
  state: 'waiting' | 'running';
  cancelReason: string | null;
  /**
   * Cancelled by this host (its job's lock lost, BullMQ's abort, this host silent too long),
   * not by the scheduler: the try ends as lost (retried if retries are left), never as a
   * cancel, which the scheduler would take as final.
   */
  cancelledByHost: boolean;
  finished: (event: FinishedEvent) => void;
  outcome: Promise<RemoteResult>;
  /** Its start, not reported yet (see STARTED_HOLD_MS). */
  heldStart: { report: StartedReport; timer: NodeJS.Timeout } | null;
}

/**
 * How long a try's start is held back. Most tries of a busy DAG are short: one that ends
 * within this reports its start with its result, which saves a Redis write on the host and
 * a stream entry (and a lazy task-instance write) on the scheduler. Anything else the try
 * sends (an XCom pull, a heartbeat) reports the start first, so the scheduler always sees a
 * running try before it hears from it; a cancel of a held try reaches it at most this late.
 */
const STARTED_HOLD_MS = 5;

export class WorkerHost {
  readonly id: string;
  private readonly local: Executor;
  private readonly gate: SlotGate;
  private readonly tries = new Map<string, HostTry>();
  private readonly byKey = new Map<string, HostTry>();
  private readonly done = new Map<string, RemoteResult>();
  private readonly workers = new Map<string, Worker>();
  private readonly watchdog: ConsumerWatchdog;
  private readonly xcoms = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextRequestId = 1;
  private bull: Bullmq | null = null;
  private redis: Redis | null = null;
  private inboxConnection: Redis | null = null;
  private inbox: StreamReader | null = null;
  private beatTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  private lastBeatTickAt = 0;
  private readonly startedAt = Date.now();
  /** os.hostname() is a system call: asked once, not for every result. */
  private readonly machine = hostname();
  private readonly dagFiles = new FilePresence();
  private readonly snapshots = new FilePresence({ rememberMissing: true });
  private stopping = false;
  private stopped: Promise<void> | null = null;

  constructor(private readonly o: WorkerHostOptions) {
    this.id = `${o.name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${randomUUID().slice(0, 8)}`;
    this.gate = new SlotGate(o.slots);
    const observe = o.observe;
    const local = createLocalExecutor({
      ...o.local,
      parallelism: o.slots,
      defaultIsolation: o.isolation,
      logDir: o.logsFolder,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      taskApi: { xcom: (dagId, runId, taskId) => this.pullXcom(dagId, runId, taskId) },
      onEvent: observe
        ? (event) => {
            observe.event(event);
            this.onLocalEvent(event);
          }
        : (event) => this.onLocalEvent(event),
      ...(observe ? { onWorkerRecycled: (isolation: Isolation, reason: WorkerRecycleReason) => observe.workerRecycled(isolation, reason) } : {}),
    });
    this.local = observe ? observe.executor(local) : local;
    this.watchdog = new ConsumerWatchdog({
      consumers: () => this.workers,
      freeSlots: () => this.gate.free,
      openProbe: (queue) => {
        const probe = new this.bull!.Queue(queue, { connection: this.redis!, prefix: BULL_PREFIX });
        probe.on('error', () => {});
        return probe;
      },
      replace: (queue, why) => this.replaceConsumer(queue, why),
    });
  }

  /** The BullMQ lock of a job: renewed every half of it while the try runs. */
  get lockMs(): number {
    return Math.min(30_000, Math.max(2_000, this.o.zombieTimeoutMs));
  }

  async start(): Promise<void> {
    this.bull = await loadBullmq();
    this.redis = await connectRedis(this.o.redisUrl, `kiln-worker-${this.id}`, {
      onDown: (err) => this.o.log(`Redis at ${redactUrl(this.o.redisUrl)} is unreachable (${err.message}); waiting for it`),
      onUp: () => this.o.log('Redis is back'),
    });
    this.inboxConnection = await connectRedis(this.o.redisUrl, `kiln-worker-${this.id}-inbox`);
    this.inboxConnection.on('error', () => {});
    await this.local.start();
    await this.beat();
    this.inbox = new StreamReader(this.inboxConnection, hostInbox(this.id), (payload) => this.onCommand(payload));
    this.beatTimer = setInterval(() => void this.beat().catch(() => {}), this.beatMs);
    this.beatTimer.unref();
    for (const queue of this.o.queues) this.startWorker(queue);
    this.watchdog.start();
  }

  /** Running tries (for the CLI's status line). */
  get running(): number {
    return this.gate.used;
  }

  /** Stops taking jobs; running tries may finish for drainMs, then are cancelled. */
  stop(drainMs: number): Promise<void> {
    this.stopped ??= this.shutdown(drainMs);
    return this.stopped;
  }

  // ---- consuming --------------------------------------------------------------------------

  private startWorker(queue: string): void {
    const worker = new this.bull!.Worker<RemoteJob, RemoteResult>(queue, (job, token, signal) => this.process(queue, job, token, signal), {
      connection: this.redis!, prefix: BULL_PREFIX, name: this.id, concurrency: this.o.slots,
      lockDuration: this.lockMs, stalledInterval: this.lockMs,
      // A job whose lock expired (its host died or stalled) fails instead of running again:
      // the scheduler turns that into a failed try, retried under a new try number.
      maxStalledCount: 0,
    });
    worker.on('error', () => {}); // outages are reported once by the connection
    worker.on('lockRenewalFailed', (jobIds) => {
      const reason = "this host lost the job's lock in Redis; the scheduler gives the try up";
      this.o.log(`${reason}: cancelling ${jobIds.map((id) => this.tries.get(id)?.key ?? id).join(', ')}`);
      for (const jobId of jobIds) this.cancelTry(jobId, reason, true);
    });
    this.workers.set(queue, worker);
    this.watchdog.tookJob(queue);
  }

  private async process(queue: string, job: Job<RemoteJob, RemoteResult>, token: string | undefined, signal: AbortSignal | undefined): Promise<RemoteResult> {
    this.watchdog.tookJob(queue);
    const jobId = job.id!;
    // Redelivered: the outcome of the run that happened (or happens) here, never a second copy.
    const done = this.done.get(jobId);
    if (done !== undefined) return this.hinted(job.data.events, done);
    const current = this.tries.get(jobId);
    if (current !== undefined) return current.outcome;
    if (this.stopping) return this.giveBack(job, token);
    let finished!: (event: FinishedEvent) => void;
    const ended = new Promise<FinishedEvent>((resolve) => (finished = resolve));
    const t: HostTry = { jobId, key: job.data.work.key, events: job.data.events, work: null, state: 'waiting', cancelReason: null, cancelledByHost: false, finished, outcome: null!, heldStart: null };
    t.outcome = this.runTry(t, job.data, ended, signal);
    this.tries.set(jobId, t);
    this.byKey.set(t.key, t);
    try {
      const result = await t.outcome;
      this.remember(jobId, result);
      return this.hinted(t.events, result);
    } catch (err) {
      if (err instanceof GiveBack) return this.giveBack(job, token);
      throw err;
    } finally {
      this.tries.delete(jobId);
      this.byKey.delete(t.key);
    }
  }

  private async runTry(t: HostTry, data: RemoteJob, ended: Promise<FinishedEvent>, signal: AbortSignal | undefined): Promise<RemoteResult> {
    signal?.addEventListener('abort', () => this.cancelTry(t.jobId, 'BullMQ cancelled the job', true), { once: true });
    const fence = await this.redis!.get(cancelKey(t.jobId));
    if (fence !== null) return this.result(cancelled(t.key, `before it started: ${fence}`), null);
    if (!(await this.gate.acquire(t))) {
      if (t.cancelReason !== null) return this.result(this.cancelEnd(t, cancelled(t.key, `before it started: ${t.cancelReason}`)), null);
      throw new GiveBack(); // stopping before it started: another host may take it
    }
    try {
      const work = this.localWork(data);
      if (!this.dagFiles.has(work.dagFile)) {
        const message = `the DAG file is not on worker host ${this.id} at ${work.dagFile}: a host needs the scheduler's DAG folder at its own dagsFolder (KILN_DAGS_FOLDER, now ${this.o.dagsFolder})`;
        return this.result(failedEvent(t.key, { name: 'KilnError', code: 'DAG_NOT_FOUND', message }, false), null);
      }
      t.work = work;
      t.state = 'running';
      this.local.submit(work);
      const event = this.cancelEnd(t, await ended);
      const started = t.heldStart?.report;
      this.dropHeldStart(t);
      return this.result(event, work.logFile, started);
    } finally {
      this.gate.release();
    }
  }

  /** Puts a job that never started here back in its queue (stopping), as if never taken. */
  private async giveBack(job: Job<RemoteJob, RemoteResult>, token: string | undefined): Promise<never> {
    await job.moveToWait(token);
    throw new this.bull!.WaitingError();
  }

  /** The scheduler's paths made this host's: DAG files under its dags folder, logs under its logs folder. */
  private localWork(data: RemoteJob): TaskWork {
    const w = data.work;
    const snapshot = w.dagSourceFile != null && this.snapshots.has(w.dagSourceFile) ? w.dagSourceFile : null;
    return {
      ...w,
      dagFile: isAbsolute(data.dagPath) ? data.dagPath : join(this.o.dagsFolder, data.dagPath),
      dagSourceFile: snapshot,
      logFile: data.logPath === null ? null : join(this.o.logsFolder, data.logPath),
    };
  }

  private result(event: FinishedEvent, logFile: string | null, started?: StartedReport): RemoteResult {
    return { event, host: this.id, hostname: this.machine, logFile, logTail: readLogTail(logFile, this.machine), ...(started === undefined ? {} : { started }) };
  }

  /**
   * The 'finished' hint goes out before BullMQ moves the job to completed (the caller returns
   * the result to it), not after: the scheduler acts on the result a round trip sooner. The
   * job's return value stays the truth that the scheduler reads back if the hint is lost.
   */
  private hinted(stream: string, result: RemoteResult): RemoteResult {
    this.send(stream, { type: 'finished', key: result.event.key, result });
    return result;
  }

  /** A try this host cancelled itself ends as lost (see HostTry.cancelledByHost). */
  private cancelEnd(t: HostTry, event: FinishedEvent): FinishedEvent {
    return t.cancelledByHost ? endOfHostCancel(event, this.id, t.cancelReason!) : event;
  }

  private remember(jobId: string, result: RemoteResult): void {
    this.done.set(jobId, { ...result, logTail: null });
    if (this.done.size > DONE_REMEMBERED) this.done.delete(this.done.keys().next().value!);
  }

  private cancelTry(jobId: string, reason: string, byHost: boolean): void {
    const t = this.tries.get(jobId);
    if (t === undefined || t.cancelReason !== null) return;
    t.cancelReason = reason;
    t.cancelledByHost = byHost;
    if (t.state === 'waiting') this.gate.cancel(t);
    else this.local.cancel(t.key, reason);
  }

  // ---- the local supervisor's events, to the scheduler ------------------------------------------

  private onLocalEvent(event: ExecutorEvent): void {
    if (event.type === 'heartbeat') {
      const byStream = new Map<string, string[]>();
      for (const key of event.keys) {
        const t = this.byKey.get(key);
        if (t === undefined) continue;
        this.reportStart(t);
        byStream.set(t.events, [...(byStream.get(t.events) ?? []), key]);
      }
      for (const [stream, keys] of byStream) this.send(stream, { type: 'heartbeat', keys, at: event.at });
      return;
    }
    const t = this.byKey.get(event.key);
    if (t === undefined) return;
    if (event.type === 'started') {
      const report: StartedReport = { isolation: event.isolation, pid: event.pid, threadId: event.threadId, at: event.at };
      t.heldStart = { report, timer: setTimeout(() => this.reportStart(t), STARTED_HOLD_MS) };
    } else if (event.type === 'task-heartbeat') {
      this.reportStart(t);
      this.send(t.events, event.details === undefined ? { type: 'task-heartbeat', key: event.key, at: event.at } : { type: 'task-heartbeat', key: event.key, details: event.details, at: event.at });
    } else {
      t.finished(event);
    }
  }

  /** Sends a held start now (see STARTED_HOLD_MS). */
  private reportStart(t: HostTry): void {
    const held = t.heldStart;
    if (held === null) return;
    this.dropHeldStart(t);
    this.send(t.events, { type: 'started', key: t.key, host: this.id, ...held.report });
  }

  private dropHeldStart(t: HostTry): void {
    if (t.heldStart === null) return;
    clearTimeout(t.heldStart.timer);
    t.heldStart = null;
  }

  private send(stream: string, event: HostEvent): void {
    void xadd(this.redis!, stream, encode(event)).catch(() => {});
  }

  /** A task's ctx.xcom(): asked of the scheduler of a try of that run running here. */
  private pullXcom(dagId: string, runId: string, taskId: string): Promise<unknown> {
    const t = [...this.byKey.values()].find((x) => x.state === 'running' && x.work?.dagId === dagId && x.work.runId === runId);
    if (t === undefined) return Promise.reject(new Error(`no try of run '${runId}' of DAG '${dagId}' runs on this host`));
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.xcoms.delete(requestId);
        reject(new Error(`the scheduler did not answer the XCom pull of '${taskId}' within ${XCOM_TIMEOUT_MS / 1000}s`));
      }, XCOM_TIMEOUT_MS);
      this.xcoms.set(requestId, { resolve, reject, timer });
      this.reportStart(t); // the scheduler answers only a try it knows is running
      this.send(t.events, { type: 'xcom-pull', key: t.key, host: this.id, requestId, dagId, runId, taskId });
    });
  }

  private onCommand(payload: string): void {
    const command = decode<HostCommand>(payload);
    if (command === null) return;
    if (command.type === 'cancel') {
      this.cancelTry(command.jobId, command.reason, false);
      return;
    }
    const pending = this.xcoms.get(command.requestId);
    if (pending === undefined) return;
    this.xcoms.delete(command.requestId);
    clearTimeout(pending.timer);
    if (command.error !== undefined) pending.reject(deserializeError(command.error));
    else pending.resolve(command.value);
  }

  // ---- liveness ---------------------------------------------------------------------------------

  private get beatMs(): number {
    return Math.max(100, Math.min(this.o.heartbeatIntervalMs, this.o.zombieTimeoutMs / 4, 5_000));
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    // Stopped (SIGSTOP) or starved past zombieTimeoutMs: the scheduler has failed our tries
    // as `worker host lost` and may run them again elsewhere. Stop ours now.
    if (this.lastBeatTickAt !== 0 && now - this.lastBeatTickAt > this.o.zombieTimeoutMs) {
      const reason = `this worker host was silent for ${Math.round((now - this.lastBeatTickAt) / 1000)}s, past zombieTimeoutMs; the scheduler gave its tries up`;
      if (this.tries.size > 0) this.o.log(`${reason}: cancelling ${this.tries.size} tries`);
      for (const jobId of [...this.tries.keys()]) this.cancelTry(jobId, reason, true);
    }
    this.lastBeatTickAt = now;
    const record: HostRecord = {
      id: this.id, name: this.o.name, hostname: this.machine, pid: process.pid, queues: this.o.queues, slots: this.o.slots,
      running: this.gate.used, seq: ++this.seq, startedAt: this.startedAt, at: now,
    };
    const ttlMs = this.o.zombieTimeoutMs * 3;
    await this.redis!.multi().set(hostKey(this.id), JSON.stringify(record), 'PX', ttlMs).zadd(HOSTS_KEY, now, this.id).pexpire(hostInbox(this.id), ttlMs).exec();
  }

  /** The watchdog's verdict (consumer-watchdog.ts): this queue's Worker is replaced. */
  private replaceConsumer(queue: string, why: string): void {
    const worker = this.workers.get(queue);
    if (worker === undefined || this.stopping) return;
    this.o.log(`the consumer of queue '${queue}' is replaced: ${why}`);
    this.workers.delete(queue);
    void worker.close().catch(() => {}); // its running jobs finish on their own
    this.startWorker(queue);
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.stopping = true;
    const watchdogStopped = this.watchdog.stop();
    // No new jobs; jobs taken but not started go back to their queue.
    await Promise.all([...this.workers.values()].map((w) => w.pause(true).catch(() => {})));
    this.gate.close();
    await this.local.stop({ drainMs });
    await Promise.all([...this.workers.values()].map((w) => w.close().catch(() => {})));
    await watchdogStopped;
    if (this.beatTimer !== null) clearInterval(this.beatTimer);
    for (const pending of this.xcoms.values()) clearTimeout(pending.timer);
    this.inboxConnection?.disconnect();
    await this.inbox?.stop();
    await this.redis?.multi().del(hostKey(this.id), hostInbox(this.id)).zrem(HOSTS_KEY, this.id).exec().catch(() => {});
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }
}

class GiveBack extends Error {}
