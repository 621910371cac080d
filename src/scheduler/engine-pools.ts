/**
 * The pool slots one run engine holds, and how many it may hold. Without poolsInStore the
 * configured sizes are the limit. With poolsInStore (several schedulers on one database) the
 * store takes the slots exactly as it queues each try (see WriteBatch), and this is only the
 * engine's estimate: `caps` is the most slots of a pool it may hold until the next reset(),
 * as the store last counted them (what the others use then is not ours to take). Our own
 * tries ending free room under a cap at once; what others free shows at the next reset()
 * (the scheduler's tick).
 */
import type { TiRow } from '../store/types.js';

type Slots = Pick<TiRow, 'pool' | 'poolSlots'>;

export class EnginePools {
  private readonly used = new Map<string, number>();
  private readonly caps = new Map<string, number>();

  /** `sizes`: slots per pool name; a pool not listed is unlimited. */
  constructor(private readonly sizes?: ReadonlyMap<string, number>) {}

  /** True if a try taking `ti.poolSlots` of `ti.pool` fits now. */
  fits(ti: Slots): boolean {
    const limit = Math.min(this.sizes?.get(ti.pool) ?? Infinity, this.caps.get(ti.pool) ?? Infinity);
    return (this.used.get(ti.pool) ?? 0) + ti.poolSlots <= limit;
  }

  take(ti: Slots): void {
    this.used.set(ti.pool, (this.used.get(ti.pool) ?? 0) + ti.poolSlots);
  }

  release(ti: Slots): void {
    this.used.set(ti.pool, Math.max(0, (this.used.get(ti.pool) ?? 0) - ti.poolSlots));
  }

  /** What the engine holds now, as the store will count it for the batch being written. */
  snapshot(): ReadonlyMap<string, number> {
    return new Map(this.used);
  }

  /** Forget the caps (the pool sizes or the others' use may have changed). */
  reset(): void {
    this.caps.clear();
  }

  /**
   * Caps each pool at what the store counted: the slots ours held when the batch was written
   * (less the refused tries) plus the room it left. Until the next reset() we queue no more
   * than that into the pool, so a full pool costs no more refused writes.
   */
  capAt(room: Record<string, number>, usedAtWrite: ReadonlyMap<string, number> | undefined, refused: readonly Slots[]): void {
    const refusedSlots = new Map<string, number>();
    for (const r of refused) refusedSlots.set(r.pool, (refusedSlots.get(r.pool) ?? 0) + r.poolSlots);
    for (const [pool, free] of Object.entries(room)) {
      this.caps.set(pool, (usedAtWrite?.get(pool) ?? 0) - (refusedSlots.get(pool) ?? 0) + free);
    }
  }
}
