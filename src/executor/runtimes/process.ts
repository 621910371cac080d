/**
 * One pre-forked child process, run through a single-worker tinypool pool (child_process
 * runtime). Tinypool forks it (env, execArgv, stdio piped to kiln's) and carries the task
 * call and its reply; kiln decides which process runs what and when it dies.
 *
 * Transport: kiln protocol messages share the child's IPC channel with tinypool's own.
 * Tinypool marks its messages (`__tinypool_worker_message__`) and hands every other one to
 * the `channel` given with a task; that channel is given once, with the warm-up call, and
 * stays bound to the process. Everything on one channel is ordered, so logs a try sent
 * always arrive before its reply.
 *
 * Killing: the child is in kiln's process group (tinypool forks without `detached`), so a
 * group kill is impossible; its descendants are found by parent pid and signalled first.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Tinypool } from 'tinypool';
import { isKilnMessage, type RunnerMessage, type SupervisorMessage } from '../../protocol/messages.js';
import type { RunReply, RunRequest, WarmReply, WarmRequest } from '../../../workers/pool-protocol.js';
import { terminateTree } from './kill.js';
import { appendToLog } from './log-append.js';
import { startTimeout, withTimeout } from './start-timeout.js';
import { recordReply, WorkerGoneError, type MessageSink, type PooledWorker, type WorkerConfig, type WorkerExit, type WorkerState } from './types.js';

/** setTimeout's maximum: tinypool's idle timer for a pool with minThreads 0 must never fire. */
const NEVER_MS = 2 ** 31 - 1;
/** After 'exit', how long to wait for stderr to drain (a V8 fatal error explains the crash). */
const STDERR_DRAIN_MS = 200;
const STDERR_TAIL_BYTES = 4096;

export class ProcessWorker implements PooledWorker {
  state: WorkerState = 'starting';
  pid: number | null = null;
  readonly threadId = null;
  samplePid: number | null = null;
  exitCode: number | null = null;
  signal: string | null = null;
  tasksRun = 0;
  memoryBytes: number | null = null;
  recycleRequested = false;
  onIdleExit: (() => void) | null = null;
  private pool: Tinypool | null = null;
  private child: ChildProcess | null = null;
  private sink: MessageSink | null = null;
  private toChild: ((msg: unknown) => void) | null = null;
  private stderrTail = '';
  /** Log file of the current (or last) try: where output that bypassed the runner goes. */
  private logFile: string | null = null;
  private exited: Promise<WorkerExit> = new Promise(() => {});

  /** Tinypool's side channel: unmarked messages from the child land in postMessage. */
  private readonly channel = {
    onMessage: (send: (msg: unknown) => void) => {
      this.toChild = send;
    },
    postMessage: (msg: unknown) => {
      if (isKilnMessage(msg)) this.sink?.(msg as RunnerMessage);
    },
  };

  constructor(private readonly config: WorkerConfig) {}

  get alive(): boolean {
    return this.state === 'busy' || this.state === 'ready';
  }

  async start(): Promise<void> {
    const { config } = this;
    const pool = new Tinypool({
      runtime: 'child_process',
      filename: fileURLToPath(config.entry),
      minThreads: 0, // no automatic respawn: a dead process's replacement is the pool's decision
      maxThreads: 1,
      idleTimeout: NEVER_MS,
      env: config.env,
      execArgv: config.heapLimitMb === null ? [] : [`--max-old-space-size=${config.heapLimitMb}`],
    });
    this.pool = pool;
    const failed = new Promise<never>((_, reject) => pool.on('error', reject));
    failed.catch(() => {});
    const timeout = startTimeout('process', config.startTimeoutMs);
    const warm: WarmRequest = { __kiln: 1, type: 'warm', maxDagVersions: config.maxDagVersions };
    try {
      const reply = (await Promise.race([pool.run(warm, { channel: this.channel }), failed, timeout.promise])) as WarmReply;
      // Tinypool's ProcessWorker keeps the ChildProcess in `.process`; its exit code and
      // signal are the facts a crash report needs.
      const child = (pool.threads[0] as unknown as { process?: ChildProcess } | undefined)?.process;
      if (!child || child.pid !== reply.pid) throw new Error('tinypool did not expose the forked ChildProcess');
      this.child = child;
      this.pid = this.samplePid = reply.pid;
      this.exited = this.watchExit(child);
      this.state = 'ready';
    } catch (err) {
      this.state = 'failed';
      void pool.destroy();
      throw err;
    } finally {
      timeout.clear();
    }
  }

  run(req: RunRequest, onMessage: MessageSink): Promise<RunReply> {
    this.state = 'busy';
    this.sink = onMessage;
    this.logFile = req.work.logFile;
    return this.pool!.run(req).then(
      (reply: RunReply) => {
        this.sink = null;
        return recordReply(this, reply);
      },
      (err: Error) => this.gone(err),
    );
  }

  send(msg: SupervisorMessage): void {
    // A try's messages reach it only while it runs; a preload also an idle worker.
    if (this.state === 'busy' || (this.state === 'ready' && msg.type === 'preload')) this.toChild?.(msg);
  }

  kill(): void {
    if (this.pid === null || this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    terminateTree(this.pid, this.config.killGraceMs, { includeRoot: true });
  }

  reapStrays(): void {
    if (this.pid !== null) terminateTree(this.pid, this.config.killGraceMs, { includeRoot: false });
  }

  async close(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    this.reapStrays();
    await this.pool?.destroy(); // SIGTERM, SIGKILL after tinypool's 1 s
    this.state = 'stopped';
  }

  private watchExit(child: ChildProcess): Promise<WorkerExit> {
    // Tinypool pipes the child's stdio into kiln's own; send it to the try's log instead.
    child.stdout?.unpipe(process.stdout);
    child.stderr?.unpipe(process.stderr);
    child.stdout?.on('data', (chunk: Buffer) => this.passOn(chunk, process.stdout));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
      this.passOn(chunk, process.stderr);
    });
    return new Promise((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitCode = code;
        this.signal = signal;
        if (this.state === 'ready') {
          this.state = 'failed';
          this.onIdleExit?.();
        }
        // stderr may still hold the last words (a V8 fatal error) after 'exit'.
        const drained = child.stderr && !child.stderr.readableEnded ? new Promise<void>((r) => child.stderr!.once('end', r)) : Promise.resolve();
        void withTimeout(drained, STDERR_DRAIN_MS, undefined).then(() => resolve({ exitCode: code, signal, stderrTail: this.stderrTail }));
      };
      if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
      else child.once('exit', onExit);
    });
  }

  private passOn(chunk: Buffer, fallback: NodeJS.WriteStream): void {
    if (this.logFile !== null) appendToLog(this.logFile, chunk);
    else fallback.write(chunk);
  }

  private async gone(err: Error): Promise<never> {
    this.sink = null;
    this.state = 'failed';
    if (this.pid !== null && this.child?.exitCode === null && this.child.signalCode === null) {
      // run() failed but the process lives on: nobody should trust it now.
      terminateTree(this.pid, this.config.killGraceMs, { includeRoot: true });
    }
    const exit = await withTimeout(this.exited, this.config.killGraceMs + 5000, { exitCode: null, signal: null });
    void this.pool?.destroy();
    throw new WorkerGoneError({ ...exit, cause: err });
  }
}
