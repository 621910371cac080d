/**
 * The supervisor's record of one submitted try, and the shapes its end takes.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Isolation } from '../dag/types.js';
import type { KilnErrorCode } from '../errors.js';
import type { ResourceUsage, SerializedError, TaskOutcome, TaskWork } from '../protocol/messages.js';
import type { Waiter } from './pool.js';
import type { PooledWorker, TaskHost, WorkerExit } from './runtimes/types.js';
import type { Sampled } from './usage-sampler.js';

/** Why the supervisor ends a try itself (timeout, heartbeat timeout, cancel, stop). */
export interface StopReason {
  code: KilnErrorCode;
  message: string;
  noRetry: boolean;
}

export interface Finish {
  outcome: TaskOutcome;
  noRetry: boolean;
  value?: unknown;
  rescheduleAt?: number;
  error: SerializedError | null;
  exitCode: number | null;
  signal: string | null;
  usage: ResourceUsage;
}

/** The supervisor, as a try waiting for a worker sees it. */
export interface TaskRunOwner {
  runOnWorker(task: TaskRun, worker: PooledWorker): void;
  failUnstarted(task: TaskRun, err: Error): void;
  /** A new RSS sample of the try's process tree: the owner enforces the memory limit. */
  sampled(task: TaskRun): void;
}

/** The supervisor's record of one submitted try. */
export class TaskRun implements Sampled, Waiter {
  host: TaskHost | null = null;
  worker: PooledWorker | null = null;
  startedAt = 0;
  finished = false;
  stopReason: StopReason | null = null;
  timeoutTimer: NodeJS.Timeout | null = null;
  heartbeatTimer: NodeJS.Timeout | null = null;
  graceTimer: NodeJS.Timeout | null = null;
  peakRssBytes: number | null = null;
  lastRssBytes: number | null = null;
  sampledCpuMs: number | null = null;
  /** Threads: kiln's own RSS when the try began (its growth is what the thread guard weighs). */
  rssAtStartBytes = 0;

  constructor(
    readonly work: TaskWork,
    readonly isolation: Isolation,
    private readonly owner: TaskRunOwner,
    /** Hard memory limit of this try (the task's own, or the executor's default). */
    readonly memoryLimitBytes: number,
  ) {}

  get samplePid(): number | null {
    return this.host?.samplePid ?? null;
  }

  recordSample(rssBytes: number, cpuMs: number): void {
    this.lastRssBytes = rssBytes;
    this.peakRssBytes = Math.max(this.peakRssBytes ?? 0, rssBytes);
    this.sampledCpuMs = cpuMs;
    if (this.worker !== null) this.worker.memoryBytes = rssBytes;
    this.owner.sampled(this);
  }

  give(worker: PooledWorker): void {
    this.owner.runOnWorker(this, worker);
  }

  fail(err: Error): void {
    this.owner.failUnstarted(this, err);
  }
}

export function failed(reason: { code: KilnErrorCode; message: string }, noRetry = false): Finish {
  return {
    outcome: 'failed',
    noRetry,
    error: { name: 'KilnError', code: reason.code, message: reason.message },
    exitCode: null,
    signal: null,
    usage: { peakRssBytes: null, cpuMs: null },
  };
}

export function killedHow(isolation: Isolation, exit: WorkerExit): string {
  if (isolation === 'thread') return 'the worker thread was terminated';
  const how = exit.signal !== null ? `by ${exit.signal}` : exit.exitCode !== null ? `(exit code ${exit.exitCode})` : '';
  return `the ${isolation === 'spawn' ? 'task process' : 'worker process'} and its children were killed ${how}`.trimEnd();
}

/** The supervisor's own words in the try's log, when it ended the try (the runner could not). */
export function noteInTaskLog(logFile: string | null, error: SerializedError): void {
  if (logFile === null) return;
  const line = `${new Date().toISOString()} ERROR [kiln] ${error.code}: ${error.message}\n`;
  void mkdir(dirname(logFile), { recursive: true })
    .then(() => appendFile(logFile, line))
    .catch(() => {});
}
