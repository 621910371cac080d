/**
 * One worker thread, run through a single-thread piscina pool. Piscina owns the thread
 * (resourceLimits, env, the task call and its reply); kiln owns which thread runs what and
 * when it dies, so each thread gets a pool of its own.
 *
 * Transport: tries go through piscina's run(); logs, heartbeats, XCom and cancel go over
 * one MessagePort per thread, transferred once at start. `atomics: 'disabled'` keeps the
 * thread's event loop turning between tries (piscina's Atomics.wait would freeze it), so
 * stray callbacks of a finished try run while the thread is idle, are seen for what they
 * are, and get the thread recycled instead of failing the next try. Measured: no slower
 * for a single-thread pool.
 */
import { fileURLToPath } from 'node:url';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { SupervisorMessage } from '../../protocol/messages.js';
import { MAX_TRACKED_CHILD_PIDS, type RunReply, type RunRequest, type WarmReply, type WarmRequest } from '../../../workers/pool-protocol.js';
import { descendantsIn, isAlive, processTable, rssBytesOf } from '../../../workers/process-tree.js';
import { terminateProcesses } from './kill.js';
import { startTimeout, withTimeout } from './start-timeout.js';
import { recordReply, WorkerGoneError, type MessageSink, type PooledWorker, type WorkerConfig, type WorkerExit, type WorkerState } from './types.js';

/** How long to wait for a dead thread's 'exit' event, which carries its exit code. */
const EXIT_WAIT_MS = 5000;

export class ThreadWorker implements PooledWorker {
  state: WorkerState = 'starting';
  readonly pid = process.pid;
  threadId: number | null = null;
  readonly samplePid = null;
  exitCode: number | null = null;
  readonly signal = null;
  tasksRun = 0;
  memoryBytes: number | null = null;
  recycleRequested = false;
  onIdleExit: (() => void) | null = null;
  private pool: Piscina | null = null;
  private port: MessagePort | null = null;
  private sink: MessageSink | null = null;
  private lastError: Error | undefined;
  private exited: Promise<WorkerExit> = new Promise(() => {});
  private eluMark: EventLoopUtilization | undefined;
  /** Pids of processes the running try started; slot 0 is the count (see thread-entry.ts). */
  private readonly childPids = new Int32Array(new SharedArrayBuffer(4 * (MAX_TRACKED_CHILD_PIDS + 1)));

  constructor(private readonly config: WorkerConfig) {}

  get alive(): boolean {
    return this.state === 'busy' || this.state === 'ready';
  }

  async start(): Promise<void> {
    const { config } = this;
    const pool = new Piscina({
      filename: fileURLToPath(config.entry),
      minThreads: 0, // no automatic respawn: a dead thread's replacement is the pool's decision
      maxThreads: 1,
      idleTimeout: Infinity,
      atomics: 'disabled',
      recordTiming: false,
      env: config.env,
      resourceLimits: config.heapLimitMb === null ? undefined : { maxOldGenerationSizeMb: config.heapLimitMb },
    });
    this.pool = pool;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    port1.on('message', (msg) => this.sink?.(msg));
    port1.unref();
    const failed = new Promise<never>((_, reject) => {
      pool.on('error', (err: Error) => {
        this.lastError = err;
        reject(err);
      });
    });
    failed.catch(() => {});
    const timeout = startTimeout('thread', config.startTimeoutMs);
    const warm: WarmRequest = { __kiln: 1, type: 'warm', maxDagVersions: config.maxDagVersions, port: port2, childPids: this.childPids };
    try {
      const reply = (await Promise.race([pool.run(warm, { transferList: [port2] }), failed, timeout.promise])) as WarmReply;
      const worker = pool.threads[0] as Worker;
      this.threadId = reply.threadId;
      this.exited = new Promise((resolve) => worker.once('exit', (code) => {
        this.exitCode = code;
        if (this.state === 'ready') {
          this.state = 'failed';
          this.onIdleExit?.();
        }
        resolve({ exitCode: code, signal: null, cause: this.lastError });
      }));
      worker.on('error', (err) => (this.lastError = err));
      this.state = 'ready';
    } catch (err) {
      this.state = 'failed';
      port1.close();
      void pool.destroy();
      throw err;
    } finally {
      timeout.clear();
    }
  }

  run(req: RunRequest, onMessage: MessageSink): Promise<RunReply> {
    this.state = 'busy';
    this.sink = onMessage;
    Atomics.store(this.childPids, 0, 0);
    return this.pool!.run(req).then(
      (reply: RunReply) => {
        this.drainPort(); // messages sent before the reply are already queued on the port
        this.sink = null;
        return recordReply(this, reply);
      },
      (err: Error) => this.gone(err),
    );
  }

  /**
   * Share of wall time the thread's event loop was busy since the last call (0..1). Read
   * from this side, so a thread stuck in a synchronous loop still reads as busy.
   */
  busyShare(): number {
    const worker = this.pool?.threads[0] as Worker | undefined;
    if (worker === undefined) return 0;
    const now = worker.performance.eventLoopUtilization();
    const share = this.eluMark === undefined ? now.utilization : worker.performance.eventLoopUtilization(now, this.eluMark).utilization;
    this.eluMark = now;
    return Number.isFinite(share) ? share : 0;
  }

  send(msg: SupervisorMessage): void {
    // A try's messages reach it only while it runs; a preload also an idle worker.
    if (this.state === 'busy' || (this.state === 'ready' && msg.type === 'preload')) this.port?.postMessage(msg);
  }

  kill(): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.reapStrays();
    this.state = 'stopping';
    void this.pool?.destroy(); // Worker.terminate(): stops even `while (true) {}`
  }

  /** RSS of the processes the running try started, and of their descendants. */
  childRssBytes(): number {
    const pids = this.trackedChildPids();
    if (pids.length === 0) return 0;
    const table = processTable();
    let total = 0;
    for (const pid of pids) {
      if (!isAlive(pid)) continue;
      total += rssBytesOf(pid);
      for (const child of descendantsIn(table, pid)) total += rssBytesOf(child);
    }
    return total;
  }

  private trackedChildPids(): number[] {
    const count = Math.min(Atomics.load(this.childPids, 0), MAX_TRACKED_CHILD_PIDS);
    const pids: number[] = [];
    for (let i = 1; i <= count; i++) pids.push(Atomics.load(this.childPids, i));
    return pids;
  }

  reapStrays(): void {
    const pids = this.trackedChildPids();
    // The thread's children are kiln's own; their descendants are found from them.
    terminateProcesses(pids, this.config.killGraceMs);
  }

  async close(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    await this.pool?.destroy();
    this.port?.close();
    this.state = 'stopped';
  }

  private drainPort(): void {
    const port = this.port;
    if (port === null || this.sink === null) return;
    for (let entry = receiveMessageOnPort(port); entry !== undefined; entry = receiveMessageOnPort(port)) this.sink(entry.message);
  }

  private async gone(err: Error): Promise<never> {
    this.drainPort();
    this.sink = null;
    this.state = 'failed';
    // A rejected run() means the thread died, or is in a state nobody should trust: end it.
    void this.pool?.destroy();
    const exit = await withTimeout(this.exited, EXIT_WAIT_MS, { exitCode: null, signal: null, cause: this.lastError });
    this.port?.close();
    throw new WorkerGoneError({ ...exit, cause: exit.cause ?? err });
  }
}
