/**
 * A task's own say over retries: `noRetryOn` (error class names) and `retryOn(error)`. Runs
 * in the worker, where the real Error (with its class chain) still exists; the supervisor
 * only ever sees the serialized error and a noRetry flag.
 */
import type { TaskDefinition } from '../src/dag/types.js';

/** Why this error must not be retried, or null to retry as usual. */
export function noRetryReason(def: Pick<TaskDefinition, 'noRetryOn' | 'retryOn'>, err: unknown, warn: (message: string) => void): string | null {
  const names = def.noRetryOn ?? [];
  if (names.length > 0) {
    const hit = classNamesOf(err).find((name) => names.includes(name));
    if (hit !== undefined) return `noRetryOn lists ${hit}`;
  }
  if (typeof def.retryOn === 'function') {
    try {
      if (!def.retryOn(err)) return 'retryOn returned false';
    } catch (checkErr) {
      // A broken check must not turn a retryable failure into a final one, nor hide the task's error.
      warn(`retryOn threw (${checkErr instanceof Error ? checkErr.message : String(checkErr)}); retrying as usual`);
    }
  }
  return null;
}

/** The error's `name` and the names of its class and every class it extends. */
function classNamesOf(err: unknown): string[] {
  const names: string[] = [];
  if (typeof err === 'object' && err !== null) {
    const own = (err as { name?: unknown }).name;
    if (typeof own === 'string') names.push(own);
    for (let proto = Object.getPrototypeOf(err) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
      const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
      if (typeof name === 'string' && name.length > 0 && !names.includes(name)) names.push(name);
    }
  }
  return names;
}
