/**
 * Runs one TaskWork in the calling process, with no supervisor: the core of the spawn entry
 * and of `kiln tasks run <dag> <task> <run>`. Stays lean (no pool library, no database):
 * whoever calls it answers XCom pulls.
 */
import { KilnError } from '../src/errors.js';
import { serializeError } from '../src/protocol/errors.js';
import type { RunnerMessage, TaskResult, TaskWork } from '../src/protocol/messages.js';
import { Runner } from './runner-core.js';

export interface RunInProcessOptions {
  /** Answers ctx.xcom(taskId); without it a pull fails the pulling code with an error. */
  xcom?: (dagId: string, runId: string, taskId: string) => Promise<unknown>;
  /** Sees every message the try sends: 'log' lines, 'heartbeat's, 'xcom-pull's. */
  onMessage?: (msg: RunnerMessage) => void;
  /** Aborting it aborts ctx.signal, like a supervisor's cancel. */
  signal?: AbortSignal;
  /**
   * After work.timeoutMs (or `signal`) aborts ctx.signal, how long the task gets to return
   * before this resolves as failed anyway. The task function cannot be killed in-process; a
   * CLI should exit after a timed-out try. Default 2000.
   */
  killGraceMs?: number;
  /** Route stdout/stderr into work.logFile while the try runs (default true). */
  captureOutput?: boolean;
}

/**
 * Runs the try and resolves with its result; never rejects. work.timeoutMs is enforced
 * (AbortSignal, then give up after killGraceMs); work.heartbeatTimeoutMs is not, since
 * there is no supervisor here to watch. Like every runner, it installs process-wide
 * 'uncaughtException' / 'unhandledRejection' handlers: a stray error fails the running try
 * instead of crashing the process.
 */
export async function runTaskInProcess(work: TaskWork, options: RunInProcessOptions = {}): Promise<TaskResult> {
  const runner: Runner = new Runner({
    usage: 'process',
    captureOutput: options.captureOutput,
    send: (msg) => {
      options.onMessage?.(msg);
      if (msg.type !== 'xcom-pull') return;
      const answer = options.xcom
        ? Promise.resolve().then(() => options.xcom!(work.dagId, work.runId, msg.taskId))
        : Promise.reject(new KilnError('EXECUTOR', `ctx.xcom('${msg.taskId}'): no XCom source in this process`));
      answer.then(
        (value) => runner.receive({ __kiln: 1, type: 'xcom-value', requestId: msg.requestId, value }),
        (err: unknown) => runner.receive({ __kiln: 1, type: 'xcom-value', requestId: msg.requestId, error: serializeError(err) }),
      );
    },
  });
  const graceMs = options.killGraceMs ?? 2000;
  let stopped: { code: 'TASK_TIMEOUT' | 'TASK_CANCELLED'; message: string } | null = null;
  let giveUp: (() => void) | null = null;
  const gaveUp = new Promise<null>((resolve) => (giveUp = () => resolve(null)));
  const timers: NodeJS.Timeout[] = [];
  const stop = (code: 'TASK_TIMEOUT' | 'TASK_CANCELLED', message: string) => {
    if (stopped) return;
    stopped = { code, message };
    runner.receive({ __kiln: 1, type: 'cancel', key: work.key, reason: message });
    timers.push(setTimeout(() => giveUp!(), graceMs));
  };
  if (work.timeoutMs !== null) timers.push(setTimeout(() => stop('TASK_TIMEOUT', `timed out after ${work.timeoutMs} ms`), work.timeoutMs));
  const onAbort = () => stop('TASK_CANCELLED', `cancelled: ${String(options.signal?.reason ?? 'aborted')}`);
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const reply = await Promise.race([runner.run(work), gaveUp]);
    const result: TaskResult = reply?.result ?? { outcome: 'failed', usage: { peakRssBytes: null, cpuMs: null } };
    if (stopped !== null) {
      const { code, message } = stopped;
      return { outcome: 'failed', error: { name: 'KilnError', message, code }, usage: result.usage };
    }
    return result;
  } finally {
    for (const t of timers) clearTimeout(t);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
