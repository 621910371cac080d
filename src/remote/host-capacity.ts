/**
 * Backpressure for the bullmq executor: how many tries this scheduler may have in flight,
 * judged from the worker hosts' beats (read once a tick, never per freeSlots() call). Pure:
 * fed by the executor.
 */
import type { HostRecord } from './wire.js';

/**
 * The slots the live hosts offer this scheduler: each host's slots less what others run
 * there (its `running` less the tries of ours it runs, as far as we know them), counted once
 * per host however many queues it serves. Our own tries are not subtracted here: the
 * executor subtracts every try it has in flight (waiting in a queue or running).
 *
 * One number for all queues: the engine asks a single freeSlots(), so per-queue room cannot
 * be expressed; a host serving only a queue nobody uses still counts. null: no live host.
 */
export function hostCapacity(live: readonly HostRecord[], oursRunning: ReadonlyMap<string, number>): number | null {
  if (live.length === 0) return null;
  let capacity = 0;
  for (const host of live) {
    const others = Math.max(0, host.running - (oursRunning.get(host.id) ?? 0));
    capacity += Math.max(0, host.slots - others);
  }
  return capacity;
}

/**
 * freeSlots(): never past `parallelism` in flight, and no more than the live hosts can take.
 * No live host (none started yet, as in `dags test` before its workers): work queues up to
 * `parallelism`, as without backpressure.
 */
export function freeSlotsFor(parallelism: number, inFlight: number, capacity: number | null): number {
  return Math.min(parallelism, capacity ?? parallelism) - inFlight;
}
