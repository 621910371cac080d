/**
 * Retry delay, after Apache Airflow's `TaskInstance.next_retry_datetime`
 * (airflow/models/taskinstance.py, Airflow 2.10+/3.x).
 *
 * Airflow, in whole seconds:
 *
 *     delay = retry_delay
 *     if retry_exponential_backoff:
 *         min_backoff = max(1, ceil(retry_delay_s * 2 ** (try_number - 1)))    # overflow -> MAX_RETRY_DELAY
 *         ti_hash     = int(sha1(f"{dag_id}#{task_id}#{logical_date}#{try_number}"), 16)
 *         modded_hash = min_backoff + ti_hash % min_backoff                      # in [min, 2*min)
 *         delay       = min(modded_hash, MAX_RETRY_DELAY)                        # 24 h
 *         if max_retry_delay: delay = min(max_retry_delay, delay)
 *     next_retry = end_date + delay
 *
 * kiln keeps the formula but works in milliseconds (so sub-second delays stay sub-second):
 *
 *     base   = retryDelayMs * 2^(tryNumber - 1)
 *     min    = max(1, ceil(base))                 (capped at 24 h before hashing)
 *     jitter = sha1(`${key}#${tryNumber}`) mod min    -- deterministic per key and try
 *     delay  = min(min + jitter, 24 h)
 *     delay  = min(delay, maxRetryDelayMs)         when maxRetryDelayMs !== null
 *
 * so try n waits between retryDelay * 2^(n-1) and twice that. Callers pass as `key` what
 * identifies the task instance, e.g. `${dagId}#${taskId}#${runId}`; the try number is
 * appended here, as Airflow hashes it too.
 *
 * Faithful details worth knowing:
 * - Without exponential backoff the delay is exactly retryDelayMs, and maxRetryDelay is NOT
 *   applied (Airflow only applies max_retry_delay in the exponential branch).
 * - `tryNumber` is the try that just failed, 1-based (Airflow 2.10+/3.x semantics, where the
 *   first retry waits retry_delay * 2^0). Values below 1 are treated as 1.
 * - One deliberate difference: Airflow ignores a max_retry_delay of 0 (a falsy timedelta);
 *   kiln uses null for "no cap", so a maxRetryDelayMs of 0 caps the delay at 0.
 */
import { createHash } from 'node:crypto';

/** Airflow's MAX_RETRY_DELAY: no backoff exceeds a day. */
export const MAX_RETRY_DELAY_MS = 24 * 60 * 60 * 1000;

export interface RetryDelayOptions {
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number | null;
}

/** Milliseconds to wait after try `tryNumber` failed before the next try may start. */
export function retryDelayMs(opts: RetryDelayOptions, tryNumber: number, key: string): number {
  const delay = Math.max(0, opts.retryDelayMs);
  if (!opts.retryExponentialBackoff) return delay;

  const tryNo = Number.isFinite(tryNumber) && tryNumber >= 1 ? Math.floor(tryNumber) : 1;
  const base = delay * 2 ** (tryNo - 1);
  // Airflow falls back to MAX_RETRY_DELAY on overflow; capping here also keeps the BigInt small.
  const minBackoff = Math.max(1, Math.ceil(Math.min(base, MAX_RETRY_DELAY_MS)));
  const jitter = Number(hashKey(`${key}#${tryNo}`) % BigInt(minBackoff));
  let backoff = Math.min(minBackoff + jitter, MAX_RETRY_DELAY_MS);
  if (opts.maxRetryDelayMs !== null) backoff = Math.min(backoff, Math.max(0, opts.maxRetryDelayMs));
  return backoff;
}

function hashKey(s: string): bigint {
  return BigInt(`0x${createHash('sha1').update(s, 'utf8').digest('hex')}`);
}
