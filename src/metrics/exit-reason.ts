/**
 * Why a try ended without a result: the `reason` label of kiln_task_try_exits_total. It is
 * read from the executor's 'finished' event (the error's stable code first, then how the
 * worker went away), never from the task's own message.
 */
import type { ExecutorEvent } from '../executor/types.js';
import { failureReason } from '../protocol/failure-reason.js';

export const TRY_EXIT_REASONS = ['exception', 'exit_code', 'signal', 'timeout', 'out_of_memory', 'heartbeat', 'worker_lost', 'cancelled'] as const;
export type TryExitReason = (typeof TRY_EXIT_REASONS)[number];

type Finished = Pick<Extract<ExecutorEvent, { type: 'finished' }>, 'outcome' | 'error' | 'exitCode' | 'signal'>;

/** The reason a failed try ended (see protocol/failure-reason.ts), or null for a try that returned (success, skipped, a reschedule). */
export function tryExitReason(event: Finished): TryExitReason | null {
  if (event.outcome !== 'failed') return null;
  return failureReason(event) as TryExitReason;
}
