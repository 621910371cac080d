/**
 * Pool sizes as one scheduler may use them. Pure.
 *
 * Slot accounting has one source per scheduler: the run engine counts the slots of the
 * tries it has queued or running, exactly and at once (per event, not per tick). What other
 * schedulers on the same database use is read from the database once per tick (the queued
 * and running task instances, bounded by the executors' parallelism) and subtracted from
 * each pool's size here. With one scheduler a pool is never exceeded; with several, two of
 * them filling the same free slots between two ticks can exceed it until their tries end.
 */
import type { PoolRow, Store, TiRow } from '../store/types.js';

/** Upper bound of queued/running task instances read at once (all schedulers' parallelism together). */
const ACTIVE_TI_LIMIT = 100_000;
const FAR_FUTURE = 8.64e15;

/**
 * Every queued and running task instance, from any scheduler: the rows liveness checks and
 * pool accounting need, and only those (their number is bounded by executor parallelism).
 */
export async function activeTaskInstances(store: Store): Promise<{ running: TiRow[]; queued: TiRow[] }> {
  return { running: await store.findZombies(FAR_FUTURE, ACTIVE_TI_LIMIT), queued: await store.findStaleQueued(FAR_FUTURE, ACTIVE_TI_LIMIT) };
}

/** Slots each pool's queued and running task instances use. */
export function usedSlots(active: readonly TiRow[], include: (ti: TiRow) => boolean = () => true): Map<string, number> {
  const used = new Map<string, number>();
  for (const ti of active) {
    if ((ti.state === 'queued' || ti.state === 'running') && include(ti)) used.set(ti.pool, (used.get(ti.pool) ?? 0) + ti.poolSlots);
  }
  return used;
}

export function poolLimits(
  pools: readonly PoolRow[],
  active: readonly TiRow[],
  schedulerId: string,
  /** Pools named by tasks this scheduler drives: one missing from the table gets 0 slots. */
  referenced: Iterable<string> = [],
): Map<string, number> {
  const usedByOthers = usedSlots(active, (ti) => ti.queuedBy !== schedulerId);
  const limits = new Map<string, number>();
  for (const name of referenced) limits.set(name, 0);
  for (const p of pools) limits.set(p.name, Math.max(0, p.slots - (usedByOthers.get(p.name) ?? 0)));
  return limits;
}
