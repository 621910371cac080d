/**
 * Why a try failed, in the words callbacks and metrics use (FailureReason), from what the
 * supervisor reported: the error's stable code first, then how the worker went away; never
 * the task's own message. Pure.
 *
 *   exception      the task threw or called ctx.fail() (its worker lives on)
 *   timeout        past its `timeout`: stopped by kiln
 *   heartbeat      past its `heartbeatTimeout` without ctx.heartbeat(), or a zombie (no
 *                  heartbeat reached the database for zombieTimeout)
 *   out_of_memory  past its maxTaskMemoryBytes (killed by kiln), the heap ran out, or a
 *                  SIGKILL that looks like the kernel's OOM killer
 *   signal         its worker died of a signal kiln did not send (SIGKILL, SIGSEGV)
 *   exit_code      its worker exited (process.exit(), a native abort with a code)
 *   worker_lost    its worker went away otherwise, or could not be started
 *   cancelled      kiln stopped it: the run changed under it, timed out, or kiln shut down
 */
import type { FailureReason } from '../dag/types.js';

export interface TryEndFacts {
  error?: { code?: string; message: string } | null;
  exitCode: number | null;
  signal: string | null;
}

export function failureReason(end: TryEndFacts): FailureReason {
  const code = end.error?.code;
  switch (code) {
    case 'TASK_TIMEOUT':
      return 'timeout';
    case 'TASK_HEARTBEAT_TIMEOUT':
    case 'TASK_ZOMBIE':
      return 'heartbeat';
    case 'TASK_MEMORY_LIMIT':
      return 'out_of_memory';
    case 'TASK_CANCELLED':
      return 'cancelled';
    case 'EXECUTOR': // the worker could not be started
    case 'WORKER_HOST_LOST': // a remote worker host went silent, or Redis lost the try's job
      return 'worker_lost';
    case 'WORKER_EXITED':
      // explainExit() names a heap out of memory, and a SIGKILL that looks like the OOM killer.
      if (/ran out of memory|likely out of memory/.test(end.error?.message ?? '')) return 'out_of_memory';
      if (end.signal) return 'signal';
      if (end.exitCode !== null) return 'exit_code';
      return 'worker_lost';
    default:
      if (end.signal) return 'signal';
      return 'exception';
  }
}
