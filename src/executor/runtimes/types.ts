/**
 * The lifecycle and transport layer: one thread or process that runs tries. The
 * supervisor (local-executor.ts) decides what runs and when to kill; the pool (pool.ts)
 * decides which worker; a runtime only starts, talks to, and stops its worker.
 */
import type { RunnerMessage, SupervisorMessage } from '../../protocol/messages.js';
import type { RunReply, RunRequest } from '../../../workers/pool-protocol.js';

/** A worker's state machine: starting -> ready <-> busy -> stopping -> stopped, or failed. */
export type WorkerState = 'starting' | 'ready' | 'busy' | 'stopping' | 'stopped' | 'failed';

export interface WorkerExit {
  exitCode: number | null;
  signal: string | null;
  /** The runtime's own error, e.g. a worker thread's ERR_WORKER_OUT_OF_MEMORY. */
  cause?: Error;
  /** The end of what the process wrote to stderr behind kiln's capture (V8 fatal errors). */
  stderrTail?: string;
}

/** The worker running a try went away before answering. */
export class WorkerGoneError extends Error {
  constructor(readonly exit: WorkerExit) {
    super(`worker gone (exit code ${exit.exitCode}, signal ${exit.signal})`);
    this.name = 'WorkerGoneError';
  }
}

export type MessageSink = (msg: RunnerMessage) => void;

/** What the supervisor holds while a try runs somewhere. */
export interface TaskHost {
  readonly pid: number | null;
  readonly threadId: number | null;
  /** The process whose RSS and CPU pidusage samples during the try; null for threads. */
  readonly samplePid: number | null;
  /** Exit of the process once it is gone (spawned tasks always end this way). */
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** The thread or process is still there (the batched heartbeat reports only these). */
  readonly alive: boolean;
  send(msg: SupervisorMessage): void;
  /** Forced stop: terminate the thread, or TERM then (after the grace period) KILL the process tree. */
  kill(): void;
  /** Kills processes the last try left behind; used after a cancelled try ended on its own. */
  reapStrays(): void;
}

/** A pre-warmed worker that runs one try at a time. */
export interface PooledWorker extends TaskHost {
  state: WorkerState;
  tasksRun: number;
  /** Last known memory: heap in use (thread) or RSS (process). */
  memoryBytes: number | null;
  /** The runner asked to be replaced, or the supervisor saw it grow past the limit. */
  recycleRequested: boolean;
  /** Set by the pool: called when the worker dies while idle (a death mid-try rejects run()). */
  onIdleExit: (() => void) | null;
  /** Resolves once the worker can take tries; rejects if it fails to start (never reuse it then). */
  start(): Promise<void>;
  /** Runs one try; rejects with WorkerGoneError when the worker dies first. */
  run(req: RunRequest, onMessage: MessageSink): Promise<RunReply>;
  /** Retires an idle worker. */
  close(): Promise<void>;
}

/**
 * What every pooled worker records when a try's reply comes back: one more try run, the
 * memory figure the runner measured, whether it asked to be recycled; then it is free.
 */
export function recordReply(worker: PooledWorker, reply: RunReply): RunReply {
  worker.tasksRun++;
  worker.memoryBytes = reply.workerMemoryBytes;
  if (reply.recycle) worker.recycleRequested = true;
  worker.state = 'ready';
  return reply;
}

export interface WorkerConfig {
  /** Runner entry, found relative to the compiled module. */
  entry: URL;
  env: Record<string, string>;
  heapLimitMb: number | null;
  maxDagVersions: number;
  startTimeoutMs: number;
  killGraceMs: number;
}

export const workersDir = new URL('../../../workers/', import.meta.url);
