/**
 * The scheduler's view of worker hosts, read from their records in Redis: which of the hosts
 * holding our jobs went silent (HostLiveness), which hosts are live (their slots bound how
 * many tries we keep in flight: host-capacity.ts), and whether a queue with waiting tries
 * has any live consumer at all (said once, not on every tick).
 */
import { HostLiveness } from './host-liveness.js';
import type { Redis } from './redis.js';
import { HOSTS_KEY, hostKey, type HostRecord } from './wire.js';

export class HostWatch {
  private readonly liveness: HostLiveness;
  /** Queues we said no live host consumes. */
  private readonly unconsumed = new Set<string>();

  constructor(private readonly zombieTimeoutMs: number, maxPollGapMs: number, private readonly log: (message: string) => void) {
    this.liveness = new HostLiveness(zombieTimeoutMs, maxPollGapMs);
  }

  /** Polls these hosts; returns the ones silent past zombieTimeoutMs, with a reason each. */
  async lost(redis: Redis, hosts: readonly string[], at: number): Promise<Array<{ host: string; reason: string }>> {
    if (hosts.length === 0) return [];
    const raw = await redis.mget(hosts.map(hostKey));
    const records = new Map<string, HostRecord | null>(hosts.map((h, i) => [h, raw[i] == null ? null : (JSON.parse(raw[i]!) as HostRecord)]));
    return this.liveness.observe(records, at).map((host) => ({
      host,
      reason: `worker host lost: ${host} sent no heartbeat for ${Math.round(this.liveness.silentFor(host, at) / 1000)}s (zombieTimeoutMs ${this.zombieTimeoutMs} ms)`,
    }));
  }

  /** The hosts that beat within zombieTimeoutMs (their records), read once a tick. */
  async live(redis: Redis, at: number): Promise<HostRecord[]> {
    const ids = await redis.zrangebyscore(HOSTS_KEY, at - this.zombieTimeoutMs, '+inf');
    const raw = ids.length === 0 ? [] : await redis.mget(ids.map(hostKey));
    return raw.flatMap((r) => (r == null ? [] : [JSON.parse(r) as HostRecord]));
  }

  /**
   * Says once per queue when tries wait there and no live host consumes it (a typo in a
   * task's `queue`, or its hosts are down), and once when one does again.
   */
  checkConsumers(live: readonly HostRecord[], waiting: ReadonlySet<string>): void {
    if (waiting.size === 0 && this.unconsumed.size === 0) return;
    const consumed = new Set(live.flatMap((h) => h.queues));
    for (const queue of waiting) {
      if (consumed.has(queue) || this.unconsumed.has(queue)) continue;
      this.unconsumed.add(queue);
      this.log(`tries wait in queue '${queue}' and no live worker host consumes it: start \`kiln worker --queues ${queue}\``);
    }
    for (const queue of this.unconsumed) {
      if (!consumed.has(queue)) continue;
      this.unconsumed.delete(queue);
      this.log(`a worker host consumes queue '${queue}' again`);
    }
  }
}
