/**
 * The ends of tries that never reached (or outlived) a supervisor: made up by the executor or
 * a host in the same shape as the supervisor's 'finished' event. Pure.
 */
import type { SerializedError } from '../protocol/messages.js';
import type { FinishedEvent } from './wire.js';

export function failedEvent(key: string, error: SerializedError, noRetry: boolean): FinishedEvent {
  return { type: 'finished', key, outcome: 'failed', noRetry, error, exitCode: null, signal: null, usage: { peakRssBytes: null, cpuMs: null }, durationMs: 0, at: Date.now() };
}

/** Stopped on purpose (as the local supervisor's cancel): not retried. */
export function cancelled(key: string, reason: string): FinishedEvent {
  return failedEvent(key, { name: 'KilnError', code: 'TASK_CANCELLED', message: `cancelled: ${reason}` }, true);
}

/** The try's host or job is gone: a failure like a worker crash, retried if retries are left. */
export function lost(key: string, message: string): FinishedEvent {
  return failedEvent(key, { name: 'KilnError', code: 'WORKER_HOST_LOST', message }, false);
}

/**
 * The end of a try its host cancelled on its own (its job's lock lost, BullMQ's abort, the
 * host silent past zombieTimeoutMs): lost, retried if retries are left, never a cancel that
 * the scheduler would take as final. A try that ended otherwise before the cancel reached it
 * keeps its own end.
 */
export function endOfHostCancel(event: FinishedEvent, host: string, reason: string): FinishedEvent {
  if (event.outcome === 'success' || event.error?.code !== 'TASK_CANCELLED') return event;
  return { ...lost(event.key, `worker host ${host} gave the try up: ${reason}`), durationMs: event.durationMs, usage: event.usage };
}
