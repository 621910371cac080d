/**
 * Pool sizes as one scheduler may use them: an estimate, refreshed every tick. Pure.
 *
 * The limit itself is kept by the store, exactly, also with several schedulers on one
 * database: a try is queued only in a write batch that finds room in its pool in the same
 * transaction (TiWrite.ifPoolFull; PostgreSQL locks the pool's row, then counts the slots of
 * every queued and running task instance). A try that finds none stays scheduled.
 *
 * This estimate keeps those refusals rare. The run engine counts the slots of its own tries
 * queued or running, exactly and at once (per event, not per tick); what other schedulers
 * use is read once per tick (the queued and running task instances, bounded by the
 * executors' parallelism) and subtracted from each pool's size here. Between two ticks,
 * others may fill slots this estimate still thinks free: the store then refuses the try and
 * the engine caps the pool at what the store counted until the next tick, so a full pool
 * costs no write per event. Room shows at once when one of our own tries ends, and at the
 * next tick when another scheduler's does.
 *
 * One gap remains: a try its scheduler gave up on (its task instance marked or cleared
 * meanwhile, or a zombie) runs on until killed, up to killGraceMs, and only that scheduler
 * still counts its slots.
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
