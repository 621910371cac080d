/**
 * Which worker hosts went silent, judged by the scheduler's own clock: a host is lost when
 * its heartbeat counter (`seq`) has not moved for `timeoutMs` of polls that went through.
 * A gap between polls (Redis or this process away) resets every clock, so silence the
 * scheduler could not observe never counts against a host. Pure: fed by the executor.
 */
import type { HostRecord } from './wire.js';

export class HostLiveness {
  private readonly seen = new Map<string, { seq: number; changedAt: number }>();
  private lastPollAt: number | null = null;

  /** `maxPollGapMs`: polls further apart than this restart every host's clock. */
  constructor(private readonly timeoutMs: number, private readonly maxPollGapMs: number) {}

  /** One poll of the hosts that run tries (null: no record, e.g. expired). Returns the hosts lost. */
  observe(records: ReadonlyMap<string, HostRecord | null>, at: number): string[] {
    if (this.lastPollAt !== null && at - this.lastPollAt > this.maxPollGapMs) {
      for (const s of this.seen.values()) s.changedAt = at;
    }
    this.lastPollAt = at;
    const lost: string[] = [];
    for (const [id, record] of records) {
      const s = this.seen.get(id);
      if (s === undefined) {
        this.seen.set(id, { seq: record?.seq ?? -1, changedAt: at });
      } else if (record !== null && record.seq !== s.seq) {
        s.seq = record.seq;
        s.changedAt = at;
      } else if (at - s.changedAt > this.timeoutMs) {
        lost.push(id);
      }
    }
    for (const id of this.seen.keys()) if (!records.has(id)) this.seen.delete(id);
    return lost;
  }

  /** How long a host has been silent as far as the polls saw (for the failure message). */
  silentFor(id: string, at: number): number {
    const s = this.seen.get(id);
    return s === undefined ? 0 : at - s.changedAt;
  }
}
