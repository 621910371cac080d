/**
 * A Redis server of the test's own (`redis-server` from the machine), in a temp folder on a
 * free port, with append-only persistence, that the test may stop and start again, with its
 * data or empty. The shared Redis at 127.0.0.1:6379 is never touched.
 *
 *   const redis = await ownRedis('the remote worker tests'); // null: skipped (warned)
 *   ... redis.url ...; await redis.restart(); await redis.restart({ empty: true }); await redis.destroy();
 *
 * Without `redis-server` the suite is skipped with a notice, except with CI set, where it
 * fails (CI installs it: see .ci/run).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, hasRedisServer, NO_REDIS_SERVER, spawnRedis } from '../../scripts/redis-server.mjs';

export { hasRedisServer };

export interface OwnRedis {
  url: string;
  port: number;
  /** SIGTERM (Redis flushes its append-only file), then the same server again on the same port. */
  restart(options?: { empty?: boolean; downMs?: number }): Promise<void>;
  destroy(): Promise<void>;
}

export async function ownRedis(suite: string): Promise<OwnRedis | null> {
  if (!hasRedisServer()) {
    if (process.env.CI) throw new Error(`${NO_REDIS_SERVER}; CI is set, so ${suite} may not be skipped`);
    console.warn(`${NO_REDIS_SERVER}: skipping ${suite}`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    child = await spawnRedis({ port, dir, persistent: true });
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart({ empty = false, downMs = 0 } = {}) {
      await stop();
      if (empty) {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
      }
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
