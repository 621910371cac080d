import type { Executor, ExecutorEvent, ExecutorOptions } from '../../src/executor/types.js';
import type { TaskWork } from '../../src/protocol/messages.js';

export type ScriptedOutcome =
  | { outcome: 'success'; value?: unknown }
  | { outcome: 'failed'; message?: string; noRetry?: boolean; code?: string; exitCode?: number; signal?: string }
  | { outcome: 'skipped' }
  /** Never finishes until `release(key)` is called. */
  | { outcome: 'hold' };

/**
 * An executor whose tasks do nothing but what the test scripts: it lets the run engine be
 * tested for its decisions (readiness, retries, limits, priorities) without real workers.
 */
export class FakeExecutor implements Executor {
  readonly name = 'fake';
  readonly submitted: TaskWork[] = [];
  running = 0;
  maxRunning = 0;
  private held = new Map<string, TaskWork>();

  constructor(
    private readonly options: Pick<ExecutorOptions, 'parallelism' | 'onEvent'>,
    private readonly script: (work: TaskWork) => ScriptedOutcome | Promise<ScriptedOutcome>,
  ) {}

  async start(): Promise<void> {}

  freeSlots(): number {
    return this.options.parallelism - this.running;
  }

  submit(work: TaskWork): void {
    if (this.freeSlots() <= 0) throw new Error('no free slot');
    this.submitted.push(work);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    // Like the local executor: 'started' in a microtask right after submit, the end later.
    queueMicrotask(() => this.emit({ type: 'started', key: work.key, isolation: work.isolation, pid: 1, threadId: null, at: Date.now() }));
    setImmediate(async () => {
      const result = await this.script(work);
      if (result.outcome === 'hold') this.held.set(work.key, work);
      else this.finish(work, result);
    });
  }

  release(key: string, result: Exclude<ScriptedOutcome, { outcome: 'hold' }> = { outcome: 'success' }): void {
    const work = this.held.get(key);
    if (!work) throw new Error(`no held task ${key}`);
    this.held.delete(key);
    this.finish(work, result);
  }

  heldKeys(): string[] {
    return [...this.held.keys()];
  }

  readonly cancelled: string[] = [];

  cancel(key: string, _reason: string): void {
    this.cancelled.push(key);
  }

  async stop(): Promise<void> {}

  private finish(work: TaskWork, r: Exclude<ScriptedOutcome, { outcome: 'hold' }>): void {
    this.running--;
    this.emit({
      type: 'finished', key: work.key, outcome: r.outcome, noRetry: r.outcome === 'failed' ? Boolean(r.noRetry) : false,
      value: r.outcome === 'success' ? r.value : undefined,
      error: r.outcome === 'failed' ? { name: 'Error', message: r.message ?? 'failed', ...(r.code ? { code: r.code } : {}) } : null,
      exitCode: r.outcome === 'failed' ? (r.exitCode ?? null) : null, signal: r.outcome === 'failed' ? (r.signal ?? null) : null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 1, at: Date.now(),
    });
  }

  private emit(event: ExecutorEvent): void {
    this.options.onEvent(event);
  }
}
