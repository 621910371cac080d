/** `kiln webserver`: the web UI and HTTP API, on its own or beside a scheduler (`kiln scheduler --webserver`). */
import type { Command } from 'commander';
import type { KilnConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import type { WebServer } from '../../server/server.js';
import type { Store } from '../../store/types.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT } from '../output.js';

export function registerWebserverCommand(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('webserver')
    .description('serve the web UI and the HTTP API (/api/v1) over the configured database')
    .option('--host <host>', 'interface to listen on (config webserverHost / KILN_WEBSERVER_HOST; default 127.0.0.1)')
    .option('--port <port>', 'port (config webserverPort / KILN_WEBSERVER_PORT; default 8080; 0: any free port)')
    .action((opts: { host?: string; port?: string }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>(), { webserverHost: opts.host, webserverPort: opts.port });
        const web = await openWebServer(config, { host: config.webserverHost, port: config.webserverPort });
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
        });
        await web.close();
        return EXIT.ok;
      }),
    );
}

/** Opens its own store (migrated) and serves it; prints the URL to open. `close()` stops both. */
/**
 * `metrics`: what /metrics serves (the scheduler's registry inside `kiln scheduler`); by
 * default the database's gauges and this process's, loaded on the first scrape.
 */
export async function openWebServer(config: KilnConfig, address: { host: string; port: number }, metrics?: () => Promise<{ contentType: string; body: string } | null>): Promise<WebServer> {
  // Loaded when a web server is asked for: other commands never load Hono.
  const [{ startWebServer }, { createStore }] = await Promise.all([import('../../server/server.js'), import('../../store/index.js')]);
  const store = await createStore(config.databaseUrl);
  try {
    await store.migrate();
    const web = await startWebServer({ store, config, host: address.host, port: address.port, log: (m) => process.stderr.write(`kiln webserver: ${m}\n`), metrics: metrics ?? databaseMetrics(store) });
    process.stdout.write(`kiln web UI: ${web.openUrl}\n`);
    return {
      ...web,
      async close() {
        await web.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/** `--webserver [address]`: true for the configured address, or `port`, `host:port`, `[v6]:port`, `host`. */
export function webserverAddress(config: Pick<KilnConfig, 'webserverHost' | 'webserverPort'>, flag: string | true): { host: string; port: number } {
  if (flag === true || flag.trim() === '') return { host: config.webserverHost, port: config.webserverPort };
  const raw = flag.trim();
  if (/^\d+$/.test(raw)) return { host: config.webserverHost, port: port(raw, flag) };
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(raw);
  if (m === null) throw new UsageError(`--webserver must be [host:]port, got '${flag}'`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? config.webserverHost : host, port: m[3] === undefined ? config.webserverPort : port(m[3], flag) };
}

function port(raw: string, flag: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--webserver: '${flag}' has no valid port (0-65535)`);
  return n;
}

/** The database gauges and the process metrics, for a web server without a scheduler; prom-client loads on the first scrape. */
function databaseMetrics(store: Store): () => Promise<{ contentType: string; body: string }> {
  let registry: Promise<{ scrape(): Promise<{ contentType: string; body: string }> }> | null = null;
  return async () => {
    registry ??= import('../../metrics/index.js').then(({ KilnMetrics }) => {
      const metrics = new KilnMetrics();
      metrics.attachDatabase(() => store.metricsSnapshot());
      return metrics;
    });
    return (await registry).scrape();
  };
}
