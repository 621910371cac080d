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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OwnRedis {
  url: string;
  port: number;
  /** SIGTERM (Redis flushes its append-only file), then the same server again on the same port. */
  restart(options?: { empty?: boolean; downMs?: number }): Promise<void>;
  destroy(): Promise<void>;
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function ownRedis(suite: string): Promise<OwnRedis | null> {
  if (!hasRedisServer()) {
    const message = 'no redis-server on this machine (Debian package redis-server)';
    if (process.env.CI) throw new Error(`${message}; CI is set, so ${suite} may not be skipped`);
    console.warn(`${message}: skipping ${suite}`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await answers(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
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

/** True when something answers PING with +PONG on the port. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) {
        socket.destroy();
        resolve(data.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
