/** The web server's health: the store answers, and how long ago each scheduler beat. */
import type { Store } from '../store/types.js';

export interface Health {
  database: 'ok';
  schedulers: Array<{ id: string; hostname: string; pid: number; startedAt: number; lastHeartbeatAt: number; heartbeatAgeMs: number }>;
  /** The age of the freshest scheduler heartbeat, or null when no scheduler ever ran on this database. */
  latestHeartbeatAgeMs: number | null;
}

export async function readHealth(store: Store, now = Date.now()): Promise<Health> {
  const schedulers = (await store.listSchedulers()).map((s) => ({ ...s, heartbeatAgeMs: Math.max(0, now - s.lastHeartbeatAt) }));
  const ages = schedulers.map((s) => s.heartbeatAgeMs);
  return { database: 'ok', schedulers, latestHeartbeatAgeMs: ages.length === 0 ? null : Math.min(...ages) };
}
