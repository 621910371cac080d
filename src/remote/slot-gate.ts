/**
 * A host's slots, shared by the consumers of all its queues (each BullMQ Worker may hold up
 * to `slots` jobs; only `slots` tries run). Waiters are served first come, first served; a
 * waiter can be cancelled, and close() turns every waiter away.
 */
export class SlotGate<T = unknown> {
  private inUse = 0;
  private closed = false;
  private readonly waiters: Array<{ owner: T; wake: (granted: boolean) => void }> = [];

  constructor(private readonly slots: number) {}

  get used(): number {
    return this.inUse;
  }

  get free(): number {
    return this.slots - this.inUse;
  }

  /** Resolves true with a slot held, or false when cancelled or closed while waiting. */
  acquire(owner: T): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.inUse < this.slots && this.waiters.length === 0) {
      this.inUse++;
      return Promise.resolve(true);
    }
    return new Promise((wake) => this.waiters.push({ owner, wake }));
  }

  release(): void {
    const next = this.closed ? undefined : this.waiters.shift();
    if (next !== undefined) next.wake(true); // the slot passes on: inUse unchanged
    else this.inUse--;
  }

  cancel(owner: T): void {
    const i = this.waiters.findIndex((w) => w.owner === owner);
    if (i >= 0) this.waiters.splice(i, 1)[0]!.wake(false);
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.wake(false);
  }
}
