/** `kiln workers list`: the worker hosts that beat in Redis lately, read without a database. */
import { connectRedis } from './redis.js';
import { HOSTS_KEY, hostKey, type HostRecord } from './wire.js';

/** Live hosts (their record has not expired), newest beat first; forgets the expired ones. */
export async function listWorkerHosts(redisUrl: string): Promise<HostRecord[]> {
  const redis = await connectRedis(redisUrl, 'kiln-workers-list');
  redis.on('error', () => {});
  try {
    const ids = await redis.zrevrange(HOSTS_KEY, 0, -1);
    if (ids.length === 0) return [];
    const raw = await redis.mget(ids.map(hostKey));
    const gone = ids.filter((_, i) => raw[i] == null);
    if (gone.length > 0) await redis.zrem(HOSTS_KEY, ...gone);
    return raw.filter((r): r is string => r != null).map((r) => JSON.parse(r) as HostRecord);
  } finally {
    redis.disconnect();
  }
}
