/**
 * A PostgreSQL server of the test's own, in a temp folder on a free port, that the test may
 * stop and start: the shared server at 127.0.0.1:5432 must never be restarted under the
 * other test files. It uses the local installation's server binaries (Debian's
 * /usr/lib/postgresql/<version>/bin, or `pg_config --bindir`); run as root, they run as the
 * `postgres` user (initdb refuses root).
 *
 *   const pg = await ownPostgres('the outage tests'); // null: skipped (warned)
 *   ... pg.url ...; await pg.stop(); await pg.start(); ...; await pg.destroy();
 *
 * Missing binaries skip the suite with a notice, except with CI set, where it fails (CI
 * installs PostgreSQL: see .ci/run).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OwnPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication). */
  url: string;
  /** A fast shutdown (`pg_ctl stop -m fast`): clients get 57P01, then connections are refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  destroy(): Promise<void>;
}

export async function ownPostgres(suite: string): Promise<OwnPostgres | null> {
  const bin = findBinDir();
  const asRoot = process.getuid?.() === 0;
  if (bin === null || (asRoot && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser'))) {
    const message = `no PostgreSQL server binaries (initdb, pg_ctl) found${bin === null ? '' : ', or no runuser to run them as postgres'}`;
    if (process.env.CI) throw new Error(`${message}; CI is set, so ${suite} may not be skipped`);
    console.warn(`${message}: skipping ${suite}`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-pg-'));
  const as = async (cmd: string, args: string[]): Promise<void> => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    await run(file, argv, { timeout: 60_000 });
  };
  if (asRoot) await run('chown', ['postgres', dir]);
  const data = join(dir, 'data');
  const port = await freePort();
  await as('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const pgCtl = (...args: string[]) => as('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', ...args]);
  const start = () => pgCtl('-o', serverOptions, 'start');
  const stop = () => pgCtl('-m', 'fast', 'stop');
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function findBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, 'bin', 'pg_ctl'))) return join(root, v, 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'pg_ctl')) && existsSync(join(dir, 'initdb'))) return dir;
  return null;
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
