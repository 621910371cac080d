/**
 * The runner core, shared by every isolation (thread, process, spawn) and by
 * `kiln tasks run`. Given one TaskWork it loads the DAG module (once per file + version per
 * worker), builds the TaskContext, runs the task function and turns whatever happens into a
 * TaskResult. The adapters (thread-entry, process-entry, spawn-entry) only move messages.
 *
 * One try runs at a time per runner. That is what lets stdout/stderr capture, the
 * unhandled-error attribution and the AbortSignal be plain per-runner state.
 */
import { threadId } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Dag, TaskContext, TaskDefinition, TaskLogger } from '../src/dag/types.js';
import { KilnError, TaskFailedNoRetry, TaskSkipped } from '../src/errors.js';
import { deserializeError, findUnserializable, serializeError } from '../src/protocol/errors.js';
import type { LogLevel, ResourceUsage, RunnerMessage, SupervisorMessage, TaskResult, TaskWork } from '../src/protocol/messages.js';
import { callbackDefinition } from './callback-definition.js';
import { NO_RETRY_CODES, SensorReschedule, specialDefinition } from './special-tasks.js';
import { importDagFile } from './load-dag.js';
import type { RunReply } from './pool-protocol.js';
import { noRetryReason } from './retry-policy.js';
import { TaskLog, captureStdio, formatArgs, formatLogLine, writeRealStderr } from './task-log.js';

/**
 * How a try's usage is measured by the runner itself:
 * - 'thread': the worker's own isolate. cpuMs is the time the thread's event loop was busy
 *   during the try (performance.eventLoopUtilization; a thread has no CPU clock of its own in
 *   Node 20, and process.cpuUsage() would count every thread). peakRssBytes is the isolate's
 *   heap at the end of the try (V8 total heap + external memory), not the process RSS, which
 *   all threads share.
 * - 'process': the runner's process. cpuMs is user + system CPU of the process during the try
 *   (getrusage). peakRssBytes is the process's peak RSS when it rose during the try (exact),
 *   else its RSS at the end; the supervisor raises it with the samples it took meanwhile.
 */
export type UsageMode = 'thread' | 'process';

export interface RunnerOptions {
  /** Sends a protocol message to the supervisor (logs, heartbeats, XCom pulls). */
  send: (msg: RunnerMessage) => void;
  usage: UsageMode;
  /** Recycle after this many superseded DAG versions are loaded (Node cannot unload modules). */
  maxDagVersions?: number;
  /** Route stdout/stderr of each try into its log file (default true). */
  captureOutput?: boolean;
}

const DEFAULT_MAX_DAG_VERSIONS = 20;
/** ctx.heartbeat() in a tight loop must not flood the channel: at most one message per this. */
const HEARTBEAT_MIN_GAP_MS = 100;

/** Where errors no try caught go: the runner of this thread or process (one per runner). */
let onStrayError: ((kind: string, err: unknown) => void) | null = null;
let handlersInstalled = false;

export class Runner {
  private readonly dags = new Map<string, Dag>();
  private readonly loading = new Map<string, Promise<Dag>>();
  private readonly files = new Set<string>();
  private readonly maxDagVersions: number;
  private current: Try | null = null;
  /** Set when code of an earlier try misbehaved after it ended: the worker asks to be replaced. */
  private dirty = false;
  private nextRequestId = 1;

  constructor(private readonly options: RunnerOptions) {
    this.maxDagVersions = options.maxDagVersions ?? DEFAULT_MAX_DAG_VERSIONS;
    onStrayError = (kind, err) => this.onGlobalError(kind, err);
    installGlobalHandlers();
  }

  /** Feed every kiln message from the supervisor here. */
  receive(msg: SupervisorMessage): void {
    if (msg.type === 'preload') {
      // Ahead of its first task; a failure is reported by that task's own import.
      const loaded = this.dag(msg);
      if (loaded instanceof Promise) loaded.catch(() => {});
      return;
    }
    const t = this.current;
    if (t === null) return;
    if (msg.type === 'cancel') {
      if (msg.key === t.work.key) t.abort(msg.reason);
    } else if (msg.type === 'xcom-value') {
      t.answerXcom(msg.requestId, msg.value, msg.error);
    }
  }

  /** Runs one try to its end. Never throws: every failure is a TaskResult. */
  async run(work: TaskWork, env?: Record<string, string>): Promise<RunReply> {
    const meter = startMeter(this.options.usage);
    let result: TaskResult;
    try {
      const loaded = this.dag(work);
      const dag = loaded instanceof Promise ? await loaded : loaded;
      result = await this.runTask(dag, work, env);
    } catch (err) {
      result = failure(err);
    }
    const { usage, workerMemoryBytes } = meter.stop();
    result.usage = usage;
    return { result, recycle: this.dirty || this.dags.size - this.files.size > this.maxDagVersions, workerMemoryBytes };
  }

  private async runTask(dag: Dag, work: TaskWork, env: Record<string, string> | undefined): Promise<TaskResult> {
    if (dag.dagId !== work.dagId) {
      throw new KilnError('DAG_NOT_FOUND', `${work.dagFile} defines DAG '${dag.dagId}', not '${work.dagId}'`);
    }
    const found = work.callback ? callbackDefinition(dag, work) : dag.tasks.get(work.taskId);
    const def = typeof found === 'object' && !work.callback ? specialDefinition(found, dag, work) : found;
    if (typeof def === 'string') return { outcome: 'failed', noRetry: true, error: { name: 'KilnError', code: 'TASK_NOT_FOUND', message: def } };
    if (def === undefined) {
      return { outcome: 'failed', noRetry: true, error: { name: 'KilnError', code: 'TASK_NOT_FOUND', message: `DAG '${work.dagId}' (${work.dagFile}) has no task '${work.taskId}'` } };
    }
    const t = new Try(work, this, def);
    const restoreEnv = env ? applyEnv(env) : null;
    // logFile null means "do not capture": the try's output goes where the runner's goes.
    const restoreStdio = this.options.captureOutput === false || work.logFile === null ? null : captureStdio(t.log);
    this.current = t;
    // The supervisor's heartbeat clock must start when the task does, not when the worker was
    // asked (a spawned runner first boots Node and imports the DAG). Only tries that promise
    // heartbeats pay for this message.
    if (work.heartbeatTimeoutMs !== null) this.options.send({ __kiln: 1, type: 'started', key: work.key, pid: process.pid, threadId });
    try {
      const value = def.fn(t.context());
      if (isPromiseLike(value)) value.then((v) => t.succeed(v), (err) => t.fail(err));
      else t.succeed(value);
    } catch (err) {
      t.fail(err);
    }
    try {
      return await t.done;
    } finally {
      this.current = null;
      t.end();
      restoreStdio?.();
      restoreEnv?.();
    }
  }

  private dag(work: Pick<TaskWork, 'dagFile' | 'dagVersion' | 'dagSourceFile'>): Dag | Promise<Dag> {
    const key = `${work.dagFile}\0${work.dagVersion}`;
    const hit = this.dags.get(key);
    if (hit !== undefined) return hit;
    let pending = this.loading.get(key);
    if (pending === undefined) {
      pending = importDagFile(work.dagFile, work.dagVersion, work.dagSourceFile).then(
        (dag) => {
          this.loading.delete(key);
          this.dags.set(key, dag);
          this.files.add(work.dagFile);
          return dag;
        },
        (err: unknown) => {
          this.loading.delete(key);
          throw err;
        },
      );
      this.loading.set(key, pending);
    }
    return pending;
  }

  /** @internal used by Try */
  send(msg: RunnerMessage): void {
    try {
      this.options.send(msg);
    } catch {
      // The supervisor is gone (closed channel); the try's result is moot.
    }
  }

  /** @internal used by Try */
  requestId(): number {
    return this.nextRequestId++;
  }

  /** An error no try caught: it fails the running try, or marks the worker for replacement. */
  onGlobalError(kind: string, err: unknown): void {
    const t = this.current;
    if (t !== null && !t.settled) {
      // The task function may still be running (e.g. awaiting forever), so this worker is
      // not trustworthy any more either.
      this.dirty = true;
      const error = serializeError(err);
      error.message = `${kind}: ${error.message}`;
      error.code ??= 'TASK_FAILED';
      t.settle({ outcome: 'failed', error });
      return;
    }
    this.dirty = true;
    writeRealStderr(`[kiln runner ${process.pid}] ${kind} outside any task (the worker will be recycled): ${serializeError(err).stack ?? String(err)}\n`);
  }
}

/** One try: its context, its log, its pending XCom pulls. */
class Try {
  readonly log: TaskLog;
  readonly done: Promise<TaskResult>;
  settled = false;
  private readonly controller = new AbortController();
  private resolve!: (r: TaskResult) => void;
  private readonly xcoms = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private lastHeartbeatAt = -Infinity;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private pendingHeartbeat: { details?: unknown } | null = null;

  constructor(
    readonly work: TaskWork,
    private readonly runner: Runner,
    private readonly def: TaskDefinition,
  ) {
    this.log = new TaskLog(work.logFile);
    this.done = new Promise<TaskResult>((resolve) => (this.resolve = resolve));
  }

  context(): TaskContext {
    const { work } = this;
    const logAt = (level: LogLevel) => (...args: unknown[]) => this.logLine(level, args);
    const log: TaskLogger = { info: logAt('info'), warn: logAt('warn'), error: logAt('error'), debug: logAt('debug') };
    return {
      dagId: work.dagId,
      runId: work.runId,
      taskId: work.taskId,
      mapIndex: work.mapIndex ?? -1,
      item: work.item,
      tryNumber: work.tryNumber,
      maxTries: work.maxTries,
      params: work.params,
      runType: work.runType,
      logicalDate: new Date(work.logicalDate),
      dataIntervalStart: new Date(work.dataIntervalStart),
      dataIntervalEnd: new Date(work.dataIntervalEnd),
      prevDataIntervalStartSuccess: work.prevDataIntervalStartSuccess == null ? null : new Date(work.prevDataIntervalStartSuccess),
      prevDataIntervalEndSuccess: work.prevDataIntervalEndSuccess == null ? null : new Date(work.prevDataIntervalEndSuccess),
      signal: this.controller.signal,
      log,
      xcom: <T>(taskId: string) => this.xcom(taskId) as Promise<T>,
      heartbeat: (details?: unknown) => this.heartbeat(details),
      skip: (reason?: string): never => {
        throw new TaskSkipped(reason ?? 'skipped by the task');
      },
      fail: (reason?: string): never => {
        throw new TaskFailedNoRetry(reason ?? 'failed by the task (no retry)');
      },
    };
  }

  succeed(value: unknown): void {
    if (this.settled) return;
    const bad = value === undefined ? null : findUnserializable(value);
    if (bad !== null) {
      const message = `task '${this.work.taskId}' returned a value that is not plain JSON data at ${bad}; return strings, finite numbers, booleans, null, arrays and plain objects`;
      this.settle({ outcome: 'failed', error: { name: 'KilnError', message, code: 'RESULT_NOT_SERIALIZABLE' } });
      return;
    }
    this.settle(value === undefined ? { outcome: 'success' } : { outcome: 'success', value });
  }

  fail(err: unknown): void {
    if (this.settled) return;
    const result = failure(err);
    if (result.outcome === 'failed' && result.noRetry !== true && result.error) {
      const why = noRetryReason(this.def, err, (message) => this.logLine('warn', [message]));
      if (why !== null) {
        result.noRetry = true;
        result.error.message += ` (not retried: ${why})`;
      }
    }
    this.settle(result);
  }

  settle(result: TaskResult): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(result);
  }

  abort(reason: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(new KilnError('TASK_CANCELLED', reason));
  }

  answerXcom(requestId: number, value: unknown, error: { name: string; message: string; code?: string } | undefined): void {
    const pending = this.xcoms.get(requestId);
    if (pending === undefined) return;
    this.xcoms.delete(requestId);
    if (error) pending.reject(deserializeError(error));
    else pending.resolve(value);
  }

  /** Releases what the try holds; called once its result is known. */
  end(): void {
    this.flushHeartbeat();
    if (this.heartbeatTimer !== null) clearTimeout(this.heartbeatTimer);
    for (const pending of this.xcoms.values()) pending.reject(new KilnError('TASK_FAILED', 'the try ended before its XCom pull was answered'));
    this.xcoms.clear();
    this.log.close();
  }

  private logLine(level: LogLevel, args: unknown[]): void {
    const line = formatArgs(args);
    this.log.write(formatLogLine(level, line));
    this.runner.send({ __kiln: 1, type: 'log', key: this.work.key, level, line });
  }

  private xcom(taskId: string): Promise<unknown> {
    if (typeof taskId !== 'string' || taskId.length === 0) return Promise.reject(new TypeError('ctx.xcom(taskId): taskId must be a non-empty string'));
    const requestId = this.runner.requestId();
    return new Promise((resolve, reject) => {
      this.xcoms.set(requestId, { resolve, reject });
      this.runner.send({ __kiln: 1, type: 'xcom-pull', key: this.work.key, requestId, taskId });
    });
  }

  private heartbeat(details?: unknown): void {
    if (this.settled) return;
    if (details !== undefined && findUnserializable(details) !== null) {
      this.logLine('warn', [`ctx.heartbeat(): details dropped, not plain JSON data at ${findUnserializable(details)}`]);
      details = undefined;
    }
    const now = performance.now();
    if (now - this.lastHeartbeatAt >= HEARTBEAT_MIN_GAP_MS) {
      this.lastHeartbeatAt = now;
      this.sendHeartbeat(details);
      return;
    }
    // Too soon after the last one: keep the latest details and send them at the gap's end.
    this.pendingHeartbeat = { details };
    this.heartbeatTimer ??= setTimeout(() => {
      this.heartbeatTimer = null;
      this.lastHeartbeatAt = performance.now();
      this.flushHeartbeat();
    }, HEARTBEAT_MIN_GAP_MS - (now - this.lastHeartbeatAt));
  }

  private flushHeartbeat(): void {
    const pending = this.pendingHeartbeat;
    if (pending === null || this.settled) return;
    this.pendingHeartbeat = null;
    this.sendHeartbeat(pending.details);
  }

  private sendHeartbeat(details: unknown): void {
    this.runner.send(details === undefined
      ? { __kiln: 1, type: 'heartbeat', key: this.work.key }
      : { __kiln: 1, type: 'heartbeat', key: this.work.key, details });
  }
}

/** Turns anything a task threw into a TaskResult. */
function failure(err: unknown): TaskResult {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const error = serializeError(err);
  if (code === 'TASK_SKIPPED') {
    delete error.stack; // control flow, not a bug
    return { outcome: 'skipped', error };
  }
  if (err instanceof SensorReschedule) return { outcome: 'reschedule', rescheduleAt: err.rescheduleAt };
  const noRetry = err instanceof TaskFailedNoRetry || (err as { name?: unknown } | null)?.name === 'TaskFailedNoRetry' || (typeof code === 'string' && NO_RETRY_CODES.has(code));
  if (noRetry) delete error.stack;
  error.code ??= 'TASK_FAILED';
  return noRetry ? { outcome: 'failed', error, noRetry } : { outcome: 'failed', error };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Sets protected variables the task may see for the duration of the try. */
function applyEnv(env: Record<string, string>): () => void {
  const before = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(env)) {
    before.set(name, process.env[name]);
    process.env[name] = value;
  }
  return () => {
    for (const [name, value] of before) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

interface Meter {
  stop(): { usage: ResourceUsage; workerMemoryBytes: number };
}

function startMeter(mode: UsageMode): Meter {
  if (mode === 'thread') {
    const elu = performance.eventLoopUtilization();
    return {
      stop() {
        const heap = getHeapStatistics();
        return {
          usage: { peakRssBytes: heap.total_heap_size + heap.external_memory, cpuMs: round(performance.eventLoopUtilization(elu).active) },
          workerMemoryBytes: heap.used_heap_size,
        };
      },
    };
  }
  const before = process.resourceUsage();
  return {
    stop() {
      const after = process.resourceUsage();
      const rssBytes = process.memoryUsage.rss();
      const peakRssBytes = after.maxRSS > before.maxRSS ? after.maxRSS * 1024 : rssBytes;
      const cpuMs = (after.userCPUTime - before.userCPUTime + after.systemCPUTime - before.systemCPUTime) / 1000;
      return { usage: { peakRssBytes, cpuMs: round(cpuMs) }, workerMemoryBytes: rssBytes };
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function installGlobalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('uncaughtException', (err) => report('uncaught exception', err));
  process.on('unhandledRejection', (reason) => report('unhandled promise rejection', reason));
}

function report(kind: string, err: unknown): void {
  if (onStrayError) onStrayError(kind, err);
  else writeRealStderr(`[kiln runner ${process.pid}] ${kind}: ${String(err)}\n`);
}
