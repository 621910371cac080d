/**
 * A private `redis-server` (from the machine: Debian package redis-server) on a free port of
 * 127.0.0.1, for the tests (test/helpers/own-redis.ts: append-only persistence, restarts) and
 * the bench (bench/lib/remote-rig.mjs: no persistence). The shared Redis on 6379 is never
 * touched. Plain JavaScript so both can import it (bench/ runs without TypeScript and must
 * not import test code); its types are in redis-server.d.mts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer } from 'node:net';

export const NO_REDIS_SERVER = 'no redis-server on this machine (Debian package redis-server)';

export function hasRedisServer() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A port nothing listens on now (the server is started on it right after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts redis-server on `port` with its files in `dir` and resolves once it answers PING
 * (within 10 s, else it is killed and the call fails with what it printed). `persistent`:
 * append-only with an fsync per write, so a restart keeps every acknowledged write;
 * otherwise nothing is kept on disk.
 */
export async function spawnRedis({ port, dir, persistent }) {
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence, '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not start within 10 s: ${stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return child;
}

/** True when something answers PING with +PONG on the port. */
function answers(port) {
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
