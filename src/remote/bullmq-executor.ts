/**
 * The `bullmq` executor (scheduler side): every try becomes one BullMQ job on the queue its
 * task names, run by a `kiln worker` host through kiln's own supervisor.
 *
 *   submit(work)  -> job `t-<try key>` added (the engine committed 'queued' before submit)
 *   host events   -> 'started', heartbeats, task heartbeats, XCom pulls (StreamReader)
 *   finished      -> the job's return value; the stream's 'finished' is only a fast hint:
 *                    every in-flight job is also read back now and then (reconcile), so a
 *                    lost hint delays a result and never loses it (bullmq #2517's lesson)
 *   liveness      -> a host silent for zombieTimeoutMs fails its tries: `worker host lost`
 *   cancel(key)   -> a fence key the host checks before starting, the job removed if still
 *                    waiting, else a cancel to the host that runs it
 *   backpressure  -> freeSlots() is bounded by the live hosts' slots (read each tick from their
 *                    beats), so tries wait in kiln's priority order, not in Redis; the few
 *                    in Redis carry it too (bullPriority)
 *
 * Invariant (as the local supervisor's): exactly one 'finished' per try, from finish() only.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, relative } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { KilnError, errorMessage } from '../errors.js';
import type { Executor, ExecutorEvent } from '../executor/types.js';
import { serializeError } from '../protocol/errors.js';
import type { TaskWork } from '../protocol/messages.js';
import { freeSlotsFor, hostCapacity } from './host-capacity.js';
import { bullPriority } from './priority.js';
import { HostWatch } from './host-watch.js';
import { cancelled, lost } from './outcomes.js';
import { connectRedis, loadBullmq, redactUrl, StreamReader, xadd, type Bullmq, type Redis } from './redis.js';
import type { BullmqSettings } from './settings.js';
import {
  BULL_PREFIX, CANCEL_TTL_MS, JOB_NAME, QUEUES_KEY, cancelKey, decode, encode, eventsStream, hostInbox, jobIdOf,
  type FinishedEvent, type HostCommand, type HostEvent, type HostRecord, type RemoteJob, type RemoteResult, type StartedReport,
} from './wire.js';

/** How often in-flight jobs are read back and hosts' liveness polled. */
const TICK_MS = 1_000;
/** A try with no news for this long has its job read back. */
const QUIET_MS = 2_000;
/** Finished jobs stay in Redis this long (a scheduler reads them within seconds). */
const KEEP_FINISHED_S = 3_600;
/** At stop, how long cancelled tries may take to report before they are given up. */
const STOP_WAIT_MS = 10_000;
/** How long start() waits for Redis before it gives up. */
const CONNECT_TIMEOUT_MS = 10_000;

interface InFlight {
  key: string;
  jobId: string;
  queue: string;
  /** null: a foreign try (left by a dead scheduler), known only by its job. */
  work: TaskWork | null;
  host: string | null;
  started: boolean;
  /** The job is being added (or retried): not missing from Redis yet. */
  adding: boolean;
  submittedAt: number;
  nextCheckAt: number;
  checking: boolean;
  cancelReason: string | null;
}

export class BullmqExecutor implements Executor {
  readonly name = 'bullmq';
  readonly cancelsForeignTries = true;
  private readonly id = randomUUID().slice(0, 12);
  private readonly stream = eventsStream(this.id);
  private readonly inFlight = new Map<string, InFlight>();
  private readonly queues = new Map<string, Queue>();
  private readonly hosts: HostWatch;
  private bull: Bullmq | null = null;
  private redis: Redis | null = null;
  private readerConnection: Redis | null = null;
  private reader: StreamReader | null = null;
  /** The event streams of schedulers that are gone, read for the tries adopted from them. */
  private readonly foreign = new Map<string, Promise<{ connection: Redis; reader: StreamReader } | null>>();
  private ticker: NodeJS.Timeout | null = null;
  private ticking = false;
  private own = 0;
  /** The slots the live hosts offer us (host-capacity.ts); null: no live host. */
  private capacity: number | null = null;
  private stopping = false;
  private stopped: Promise<void> | null = null;

  constructor(private readonly s: BullmqSettings) {
    // Polls further apart than a few ticks (Redis or this process away) do not count as silence.
    this.hosts = new HostWatch(s.zombieTimeoutMs, 2.5 * TICK_MS, s.log);
  }

  async start(): Promise<void> {
    this.bull = await loadBullmq();
    const warn = (what: string) => ({
      onDown: (err: Error) => this.s.log(`Redis at ${redactUrl(this.s.redisUrl)} is unreachable (${what}: ${err.message}); waiting for it`),
      onUp: () => this.s.log(`Redis is back (${what})`),
    });
    this.redis = await connectRedis(this.s.redisUrl, `kiln-scheduler-${this.id}`, warn('commands'));
    this.readerConnection = await connectRedis(this.s.redisUrl, `kiln-scheduler-${this.id}-events`);
    this.readerConnection.on('error', () => {}); // reported once by the command connection
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new KilnError('EXECUTOR', `cannot reach Redis at ${redactUrl(this.s.redisUrl)} (redisUrl / KILN_REDIS_URL) within ${CONNECT_TIMEOUT_MS / 1000}s`)), CONNECT_TIMEOUT_MS))),
      ]);
    } catch (err) {
      this.redis.disconnect();
      this.readerConnection.disconnect();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.reader = new StreamReader(this.readerConnection, this.stream, (payload) => this.onHostEvent(payload));
    // The first dispatch already sees the hosts' slots.
    this.seeHosts(await this.hosts.live(this.redis, Date.now()).catch(() => []));
    this.ticker = setInterval(() => void this.tick(), TICK_MS);
    this.ticker.unref();
  }

  /** Called on every dispatch: no Redis here, the hosts' slots are the last tick's reading. */
  freeSlots(): number {
    return this.stopping ? 0 : freeSlotsFor(this.s.parallelism, this.own, this.capacity);
  }

  /**
   * The live hosts as a tick read them (public for tests): their slots bound freeSlots().
   * When that makes room without a try of ours ending (a host came up, or others' tries
   * ended there), nothing else would wake the engine: onCapacity() does.
   */
  seeHosts(live: readonly HostRecord[]): void {
    const before = this.freeSlots();
    const oursRunning = new Map<string, number>();
    for (const e of this.inFlight.values()) if (e.work !== null && e.started && e.host !== null) oursRunning.set(e.host, (oursRunning.get(e.host) ?? 0) + 1);
    this.capacity = hostCapacity(live, oursRunning);
    const after = this.freeSlots();
    if (after > before && after > 0) this.s.onCapacity?.();
  }

  submit(work: TaskWork): void {
    if (this.stopping || this.redis === null) throw new KilnError('EXECUTOR', `the executor is ${this.redis === null ? 'not started' : 'stopping'}; task ${work.key} was not queued`);
    if (this.freeSlots() <= 0) throw new KilnError('EXECUTOR', `no free slot for task ${work.key}: ${this.own} in flight (parallelism ${this.s.parallelism}, worker hosts offer ${this.capacity ?? 'no live host'}); submit only while freeSlots() > 0`);
    if (this.inFlight.has(work.key)) throw new KilnError('EXECUTOR', `task ${work.key} is already in flight in this executor`);
    const entry: InFlight = {
      key: work.key, jobId: jobIdOf(work.key), queue: work.queue ?? 'default', work, host: null, started: false,
      adding: true, submittedAt: Date.now(), nextCheckAt: Date.now() + QUIET_MS, checking: false, cancelReason: null,
    };
    this.inFlight.set(work.key, entry);
    this.own++;
    void this.addJob(entry);
  }

  /**
   * A try a scheduler that is gone left here: followed as if submitted here (see
   * Executor.adoptTry). Its job names the stream its host reports to (the old scheduler's):
   * that stream is read too, so heartbeats, XCom pulls and a result the old one never read
   * all arrive; the job itself is read back at the next tick, whatever the stream holds.
   */
  adoptTry(work: TaskWork, state: { started: boolean }): void {
    if (this.stopping || this.redis === null || this.inFlight.has(work.key)) return;
    const entry: InFlight = {
      key: work.key, jobId: jobIdOf(work.key), queue: work.queue ?? 'default', work, host: null, started: state.started,
      adding: false, submittedAt: Date.now(), nextCheckAt: Date.now() + QUIET_MS, checking: true, cancelReason: null,
    };
    this.inFlight.set(work.key, entry);
    this.own++;
    void this.findAdopted(entry);
  }

  private async findAdopted(entry: InFlight): Promise<void> {
    try {
      const job = await this.bull!.Job.fromId<RemoteJob, RemoteResult>(this.queue(entry.queue), entry.jobId);
      if (job !== undefined) {
        entry.host = job.processedBy ?? entry.host;
        if (job.processedOn != null) entry.started = true;
        if (job.data?.events && job.data.events !== this.stream) await this.follow(job.data.events);
      }
    } catch (err) {
      this.s.log(`looking for the job of adopted try ${entry.key}: ${errorMessage(err)}; read back at the next tick`);
    } finally {
      entry.checking = false;
      entry.nextCheckAt = 0; // the next tick reads it back: finished, running, waiting or gone
    }
  }

  /** Reads another (dead) scheduler's event stream from its start, on a connection of its own. */
  private follow(stream: string): Promise<unknown> {
    let reading = this.foreign.get(stream);
    if (reading === undefined) {
      reading = connectRedis(this.s.redisUrl, `kiln-scheduler-${this.id}-adopted`)
        .then((connection) => {
          connection.on('error', () => {});
          return { connection, reader: new StreamReader(connection, stream, (payload) => this.onHostEvent(payload)) };
        })
        .catch((err: unknown) => {
          this.s.log(`cannot read the events of adopted tries from ${stream}: ${errorMessage(err)}; their ends are read back from their jobs`);
          this.foreign.delete(stream);
          return null;
        });
      this.foreign.set(stream, reading);
    }
    return reading;
  }

  cancel(key: string, reason: string): void {
    const entry = this.inFlight.get(key);
    if (entry === undefined) {
      void this.cancelForeign(key, reason);
      return;
    }
    if (entry.cancelReason !== null) return;
    entry.cancelReason = reason;
    void this.fence(entry, reason);
  }

  stop(options: { drainMs?: number } = {}): Promise<void> {
    this.stopped ??= this.shutdown(options.drainMs ?? 0);
    return this.stopped;
  }

  // ---- jobs out ------------------------------------------------------------------------

  /** Adds the try's job, retrying while Redis is away; the fixed job id makes a repeat a no-op. */
  private async addJob(entry: InFlight): Promise<void> {
    const work = entry.work!;
    const data: RemoteJob = {
      work: { ...work, logFile: null, dagSourceFile: work.dagSourceFile ?? null },
      events: this.stream,
      dagPath: this.s.dagsFolder !== null && isInside(work.dagFile, this.s.dagsFolder) ? relative(this.s.dagsFolder, work.dagFile) : work.dagFile,
      logPath: work.logFile === null ? null : isInside(work.logFile, this.s.logDir) ? relative(this.s.logDir, work.logFile) : null,
    };
    for (let attempt = 0; this.inFlight.get(entry.key) === entry; attempt++) {
      try {
        await this.queue(entry.queue).add(JOB_NAME, data, {
          jobId: entry.jobId, attempts: 1, priority: bullPriority(work.priorityWeight ?? 1), removeOnComplete: { age: KEEP_FINISHED_S }, removeOnFail: { age: KEEP_FINISHED_S },
        });
        entry.adding = false;
        return;
      } catch (err) {
        if (attempt === 0) this.s.log(`could not add the job of ${entry.key} to queue '${entry.queue}' (${errorMessage(err)}); retrying`);
        await sleep(Math.min(100 * 2 ** attempt, 2_000));
      }
    }
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new this.bull!.Queue(name, { connection: this.redis!, prefix: BULL_PREFIX });
      queue.on('error', () => {}); // the connection reports outages once (connectRedis)
      this.queues.set(name, queue);
      void this.redis!.sadd(QUEUES_KEY, name).catch(() => {});
    }
    return queue;
  }

  /** Cancels a try: the fence first (a host checks it before starting), then the job or its host. */
  private async fence(entry: InFlight, reason: string): Promise<void> {
    const redis = this.redis!;
    try {
      await redis.set(cancelKey(entry.jobId), reason, 'PX', CANCEL_TTL_MS);
      if (entry.host !== null) {
        await this.command(entry.host, { type: 'cancel', jobId: entry.jobId, reason });
        return;
      }
      // Still waiting: take it off the queue; 0 means a host holds it (or it is not added yet),
      // and that host finds the fence, or gets the cancel when its 'started' arrives.
      if (!entry.started && (await this.queue(entry.queue).remove(entry.jobId)) === 1) this.finish(entry, cancelled(entry.key, reason));
    } catch (err) {
      this.s.log(`cancelling ${entry.key}: ${errorMessage(err)}; its job is read back until it ends`);
    }
  }

  /** A try of a run adopted from a dead scheduler: find its job, stop it, report its end. */
  private async cancelForeign(key: string, reason: string): Promise<void> {
    const jobId = jobIdOf(key);
    try {
      const names = await this.redis!.smembers(QUEUES_KEY);
      for (const name of names) {
        const job = await this.bull!.Job.fromId(this.queue(name), jobId);
        if (job === undefined) continue;
        const entry: InFlight = {
          key, jobId, queue: name, work: null, host: job.processedBy ?? null, started: job.processedOn != null,
          adding: false, submittedAt: Date.now(), nextCheckAt: 0, checking: false, cancelReason: reason,
        };
        this.inFlight.set(key, entry);
        if (job.finishedOn == null) await this.fence(entry, reason);
        return; // the next tick reads its end
      }
    } catch (err) {
      this.s.log(`looking for the job of ${key}: ${errorMessage(err)}`);
    }
    this.emit(cancelled(key, reason)); // no job anywhere: nothing runs it
  }

  private async command(host: string, command: HostCommand): Promise<void> {
    await xadd(this.redis!, hostInbox(host), encode(command));
  }

  // ---- events in ------------------------------------------------------------------------

  private onHostEvent(payload: string): void {
    const event = decode<HostEvent>(payload);
    if (event === null) return;
    const at = Date.now();
    switch (event.type) {
      case 'started': {
        const entry = this.inFlight.get(event.key);
        if (entry === undefined || entry.started) return;
        entry.nextCheckAt = at + QUIET_MS;
        if (entry.cancelReason !== null) void this.command(event.host, { type: 'cancel', jobId: entry.jobId, reason: entry.cancelReason }).catch(() => {});
        this.started(entry, event.host, event);
        return;
      }
      case 'heartbeat': {
        const keys = event.keys.filter((key) => this.inFlight.get(key)?.work != null);
        for (const key of keys) this.inFlight.get(key)!.nextCheckAt = at + QUIET_MS;
        if (keys.length > 0) this.emit({ type: 'heartbeat', keys, at: event.at });
        return;
      }
      case 'task-heartbeat':
        if (this.inFlight.get(event.key)?.work == null) return;
        this.emit(event.details === undefined ? { type: 'task-heartbeat', key: event.key, at: event.at } : { type: 'task-heartbeat', key: event.key, details: event.details, at: event.at });
        return;
      case 'xcom-pull':
        this.answerXcom(event);
        return;
      case 'finished': {
        const entry = this.inFlight.get(event.key);
        if (entry !== undefined) this.finishWith(entry, event.result);
        return;
      }
      default:
        return;
    }
  }

  /** Answered only for a try of ours that is running (started, not cancelled) in that run. */
  private answerXcom(pull: Extract<HostEvent, { type: 'xcom-pull' }>): void {
    const { requestId, dagId, runId, taskId } = pull;
    const reply = (c: HostCommand) => void this.command(pull.host, c).catch(() => {});
    const entry = this.inFlight.get(pull.key);
    if (entry?.work == null || !entry.started || entry.cancelReason !== null || entry.host !== pull.host || entry.work.dagId !== dagId || entry.work.runId !== runId) {
      reply({ type: 'xcom-value', requestId, error: { name: 'KilnError', code: 'EXECUTOR', message: `XCom of '${taskId}' refused: try ${pull.key} is not running for this scheduler` } });
      return;
    }
    Promise.resolve()
      .then(() => this.s.taskApi.xcom(dagId, runId, taskId))
      .then(
        (value) => reply(value === undefined ? { type: 'xcom-value', requestId } : { type: 'xcom-value', requestId, value }),
        (err: unknown) => reply({ type: 'xcom-value', requestId, error: serializeError(err) }),
      );
  }

  // ---- reconciliation and liveness ----------------------------------------------------------

  private async tick(): Promise<void> {
    if (this.ticking || this.redis === null) return;
    this.ticking = true;
    try {
      const at = Date.now();
      await Promise.all([...this.inFlight.values()].filter((e) => !e.checking && !e.adding && e.nextCheckAt <= at).map((e) => this.readBack(e)));
      await this.checkHosts(at);
      const live = await this.hosts.live(this.redis, at);
      this.seeHosts(live);
      const waiting = new Set([...this.inFlight.values()].filter((e) => e.work !== null && !e.started && at - e.submittedAt > QUIET_MS).map((e) => e.queue));
      this.hosts.checkConsumers(live, waiting);
      // Kept alive while we read it (and the adopted ones); recreated if Redis came back empty.
      await this.redis.pexpire(this.stream, CANCEL_TTL_MS);
      for (const stream of this.foreign.keys()) await this.redis.pexpire(stream, CANCEL_TTL_MS);
      if (this.queues.size > 0) await this.redis.sadd(QUEUES_KEY, ...this.queues.keys());
    } catch {
      // Redis away: the connection says so once; the next tick tries again.
    } finally {
      this.ticking = false;
    }
  }

  /** Reads a try's job: the truth about its end, whatever hints were lost. */
  private async readBack(entry: InFlight): Promise<void> {
    entry.checking = true;
    try {
      const job = await this.bull!.Job.fromId<RemoteJob, RemoteResult>(this.queue(entry.queue), entry.jobId);
      if (this.inFlight.get(entry.key) !== entry) return;
      if (job === undefined) {
        if (entry.work === null || entry.cancelReason !== null) this.finish(entry, cancelled(entry.key, entry.cancelReason ?? 'its job is gone'));
        else if (entry.started) this.giveUp(entry, 'its job is gone from Redis (restarted without its data?) while the try ran');
        else {
          // Never started and gone (Redis came back empty): queue it again under the same id.
          this.s.log(`the job of ${entry.key} is gone from Redis; adding it again`);
          entry.adding = true;
          void this.addJob(entry);
        }
        return;
      }
      if (job.finishedOn != null) {
        const result = job.returnvalue as RemoteResult | null;
        if (result?.event?.type === 'finished') this.finishWith(entry, result);
        else this.finish(entry, lost(entry.key, `its job failed in BullMQ: ${job.failedReason || 'no reason given'} (the host stopped renewing its lock)`));
        return;
      }
      if (entry.host === null && job.processedBy) {
        entry.host = job.processedBy;
        // Cancelled before we knew where it ran: its fence stops it at start; this stops it if it started first.
        if (entry.cancelReason !== null) await this.command(entry.host, { type: 'cancel', jobId: entry.jobId, reason: entry.cancelReason });
      }
    } catch {
      // Redis away: tried again next tick.
    } finally {
      entry.checking = false;
      entry.nextCheckAt = Date.now() + QUIET_MS;
    }
  }

  /** Polls the hosts holding our jobs (started, or waiting there for a slot); a silent one loses them. */
  private async checkHosts(at: number): Promise<void> {
    const hosts = [...new Set([...this.inFlight.values()].filter((e) => e.host !== null).map((e) => e.host!))];
    for (const { host, reason } of await this.hosts.lost(this.redis!, hosts, at)) {
      for (const entry of [...this.inFlight.values()]) if (entry.host === host) this.giveUp(entry, reason);
    }
  }

  /**
   * Fails a running try whose host or job is gone, fencing it first: should the host still
   * run it (back from a stop, or Redis lost only the job), it cancels the try.
   */
  private giveUp(entry: InFlight, message: string): void {
    void this.redis!.set(cancelKey(entry.jobId), 'worker host lost', 'PX', CANCEL_TTL_MS).catch(() => {});
    if (entry.host !== null) void this.command(entry.host, { type: 'cancel', jobId: entry.jobId, reason: message }).catch(() => {});
    this.finish(entry, lost(entry.key, message));
  }

  // ---- the end of a try -----------------------------------------------------------------------

  /** A try of ours started on `host`: from its 'started' event, or from its result (a start the host held back). */
  private started(entry: InFlight, host: string, report: StartedReport): void {
    entry.started = true;
    entry.host = host;
    this.emit({ type: 'started', key: entry.key, isolation: report.isolation, pid: report.pid, threadId: report.threadId, at: report.at });
  }

  private finishWith(entry: InFlight, result: RemoteResult): void {
    if (this.inFlight.get(entry.key) !== entry) return;
    if (!entry.started && result.started !== undefined) this.started(entry, result.host, result.started);
    const logFile = entry.work?.logFile ?? null;
    // The host's log tail becomes the scheduler's copy (unless both are the same file).
    if (logFile !== null && result.logTail !== null && !(result.hostname === hostname() && result.logFile === logFile)) {
      try {
        mkdirSync(dirname(logFile), { recursive: true });
        writeFileSync(logFile, result.logTail);
      } catch (err) {
        this.s.log(`could not write the log of ${entry.key} to ${logFile}: ${errorMessage(err)}`);
      }
    }
    this.finish(entry, { ...result.event, key: entry.key });
  }

  /** The only place a 'finished' event is emitted for a try in flight. */
  private finish(entry: InFlight, event: FinishedEvent): void {
    if (this.inFlight.get(entry.key) !== entry) return;
    this.inFlight.delete(entry.key);
    if (entry.work !== null) this.own--;
    this.emit(event);
  }

  private emit(event: ExecutorEvent): void {
    try {
      this.s.onEvent(event);
    } catch (err) {
      process.emitWarning(`kiln bullmq executor: onEvent threw on a '${event.type}' event: ${errorMessage(err)}`);
    }
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.stopping = true;
    if (this.redis === null) return;
    if (drainMs > 0) await waitFor(() => this.inFlight.size === 0, drainMs);
    for (const entry of [...this.inFlight.values()]) this.cancel(entry.key, 'kiln stopped before the task finished');
    await waitFor(() => this.inFlight.size === 0, STOP_WAIT_MS);
    for (const entry of [...this.inFlight.values()]) {
      this.finish(entry, { ...cancelled(entry.key, 'kiln stopped; its worker host did not confirm the try ended'), noRetry: false });
    }
    if (this.ticker !== null) clearInterval(this.ticker);
    this.readerConnection?.disconnect();
    await this.reader?.stop();
    for (const reading of this.foreign.values()) {
      const f = await reading;
      f?.connection.disconnect();
      await f?.reader.stop();
    }
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => {})));
    await this.redis.del(this.stream).catch(() => {});
    await this.redis.quit().catch(() => this.redis?.disconnect());
  }
}

function isInside(file: string, folder: string): boolean {
  const rel = relative(folder, file);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await sleep(20);
}
