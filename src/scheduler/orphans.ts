/**
 * Tries the engine gave up on (their run went stale, a zombie, a try stuck in queued) that
 * may still be running in the executor, which was asked to cancel them. Until the end of
 * each is reported, or its grace period passes, it keeps its pool slot and its place in
 * its run's maxActiveTasks, and blocks its task instance from being queued again and its run
 * from being adopted again: one task instance never runs twice at once.
 */
export interface Orphan {
  runKey: string;
  /** `${runKey}\u0000${taskId}`: the task instance it blocks. */
  tiKey: string;
  pool: string;
  poolSlots: number;
  /** After this, the try is assumed gone (the executor kills within its kill grace). */
  until: number;
}

export class OrphanTries {
  /** Try key (`dag/run/task/try`) -> orphan. */
  private readonly byKey = new Map<string, Orphan>();
  private readonly perTi = new Map<string, number>();
  private readonly perRun = new Map<string, number>();

  get size(): number {
    return this.byKey.size;
  }

  add(tryKey: string, orphan: Orphan): void {
    this.byKey.set(tryKey, orphan);
    this.perTi.set(orphan.tiKey, (this.perTi.get(orphan.tiKey) ?? 0) + 1);
    this.perRun.set(orphan.runKey, (this.perRun.get(orphan.runKey) ?? 0) + 1);
  }

  /** Its end was reported: removed and returned (to free its slot); undefined if not an orphan. */
  end(tryKey: string): Orphan | undefined {
    const o = this.byKey.get(tryKey);
    if (!o) return undefined;
    this.byKey.delete(tryKey);
    const left = (this.perTi.get(o.tiKey) ?? 1) - 1;
    if (left > 0) this.perTi.set(o.tiKey, left);
    else this.perTi.delete(o.tiKey);
    const leftInRun = (this.perRun.get(o.runKey) ?? 1) - 1;
    if (leftInRun > 0) this.perRun.set(o.runKey, leftInRun);
    else this.perRun.delete(o.runKey);
    return o;
  }

  /** Removes and returns the orphans whose grace period is over. */
  expire(now: number): Orphan[] {
    const out: Orphan[] = [];
    for (const [key, o] of this.byKey) if (o.until <= now) out.push(this.end(key)!);
    return out;
  }

  blocksTask(tiKey: string): boolean {
    return this.perTi.has(tiKey);
  }

  blocksRun(runKey: string): boolean {
    return this.perRun.has(runKey);
  }

  /** Abandoned tries of the run that may still be running: they count against its maxActiveTasks. */
  inRun(runKey: string): number {
    return this.perRun.get(runKey) ?? 0;
  }
}
