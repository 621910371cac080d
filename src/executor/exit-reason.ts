/**
 * Turns how a worker went away (exit code, signal, runtime error, last words on stderr,
 * last sampled memory) into the sentence a user reads on the failed task.
 */
import type { Isolation } from '../dag/types.js';
import { machineMemoryBytes } from './memory-limits.js';
import type { WorkerExit } from './runtimes/types.js';

export interface ExitHints {
  heapLimitMb: number | null;
  /** RSS of the process at the last sample, if one was taken. */
  lastRssBytes: number | null;
  maxWorkerMemoryBytes: number | null;
}

const WHO: Record<Isolation, string> = {
  thread: 'the worker thread',
  process: 'the worker process',
  spawn: 'the task process',
};

export function explainExit(isolation: Isolation, exit: WorkerExit, hints: ExitHints): string {
  const who = WHO[isolation];
  const causeCode = (exit.cause as { code?: unknown } | undefined)?.code;
  const heapLimit = hints.heapLimitMb === null ? "node's default heap limit" : `heap limit ${hints.heapLimitMb} MB`;
  if (causeCode === 'ERR_WORKER_OUT_OF_MEMORY') {
    return `${who} ran out of memory: JavaScript heap out of memory (${heapLimit}); the thread was stopped, kiln and other tasks were not affected`;
  }
  if (exit.stderrTail?.includes('heap out of memory')) {
    return `${who} ran out of memory: JavaScript heap out of memory (${heapLimit}); V8 aborted the process${exit.signal ? ` (${exit.signal})` : ''}`;
  }
  switch (exit.signal) {
    case 'SIGKILL': {
      const rss = hints.lastRssBytes;
      const limit = machineMemoryBytes();
      const high = rss !== null && (rss >= limit * 0.5 || (hints.maxWorkerMemoryBytes !== null && rss > hints.maxWorkerMemoryBytes));
      const seen = rss === null ? 'no memory sample was taken' : `its last sampled RSS was ${mb(rss)} of ${mb(limit)} available`;
      return high
        ? `${who} was killed by SIGKILL, not sent by kiln; ${seen}: likely out of memory (the kernel's OOM killer sends SIGKILL)`
        : `${who} was killed by SIGKILL, not sent by kiln (${seen}); the kernel's OOM killer or another process sent it`;
    }
    case 'SIGSEGV':
    case 'SIGBUS':
    case 'SIGILL':
    case 'SIGFPE':
      return `${who} crashed with ${exit.signal}: a native crash (a fault in native code: an addon, a native library or node itself), not a JavaScript error`;
    case 'SIGABRT':
      return `${who} aborted (SIGABRT): a native assertion or a V8 fatal error${exit.stderrTail ? `; last stderr: ${lastLine(exit.stderrTail)}` : ''}`;
    case 'SIGTERM':
    case 'SIGINT':
    case 'SIGHUP':
      return `${who} was stopped by ${exit.signal}, not sent by kiln`;
    case null:
    case undefined:
      break;
    default:
      return `${who} was killed by ${exit.signal}`;
  }
  if (exit.exitCode !== null) {
    const hint = exit.exitCode === 0 ? ' (a task that calls process.exit() ends its worker: return or throw instead)' : '';
    return `${who} exited with code ${exit.exitCode} while the task was running${hint}`;
  }
  return `${who} went away while the task was running${exit.cause ? `: ${exit.cause.message}` : ''}`;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MB`;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
