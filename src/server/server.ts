/**
 * `kiln webserver` (and `kiln scheduler --webserver`): the Hono app on Node's HTTP server,
 * one store and one change-feed follower for the server's life.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { ChangeFeedFollower, trimChangeFeed } from '../app/change-feed.js';
import type { KilnConfig } from '../config/load.js';
import { errorMessage, KilnError } from '../errors.js';
import type { Store } from '../store/types.js';
import { createWebApp, type WebAppOptions } from './app.js';
import { isLoopback, openWebAuth } from './auth.js';

export interface WebServer {
  /** The server's address, e.g. http://127.0.0.1:8080/ */
  url: string;
  /** What to open in a browser: `url`, with `?token=` when the token was generated. */
  openUrl: string;
  /** The generated admin token (null when tokens are configured). */
  token: string | null;
  port: number;
  close(): Promise<void>;
}

const TRIM_EVERY_MS = 5 * 60 * 1000;


export async function startWebServer(options: { store: Store; config: KilnConfig; host: string; port: number; uiDir?: URL; log?: (message: string) => void; metrics?: WebAppOptions['metrics'] }): Promise<WebServer> {
  const { store, config } = options;
  const log = options.log ?? (() => {});
  const { auth, generatedToken } = openWebAuth(config, options.host);
  const feed = new ChangeFeedFollower(store, { onError: (err) => log(`reading the change feed failed: ${errorMessage(err)}`) });
  // The Host allowlist needs the port, known once listening: the app reads it through this holder.
  const hosts: { allowed?: string[] } = {};
  const app = createWebApp({ store, config, feed }, { auth, uiDir: options.uiDir, metrics: options.metrics, get allowedHosts() { return hosts.allowed; } });
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: options.host, port: options.port });
    s.once('listening', () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => {
      feed.close();
      reject(new KilnError('CONFIG_INVALID', `the web server cannot listen on ${options.host}:${options.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message} (see webserverHost/webserverPort, or --host/--port)`, { cause: err }));
    });
  });
  const bound = (server.address() as AddressInfo).port;
  if (isLoopback(options.host)) hosts.allowed = ['127.0.0.1', 'localhost', '[::1]'].map((h) => `${h}:${bound}`);
  else log(`listening on ${options.host}, beyond this machine: use HTTPS in front of it (tokens travel in headers and cookies)`);
  // The feed is trimmed here too, so a database that only `dags test` and a web server use does not grow forever.
  const trim = setInterval(() => void trimChangeFeed(store).catch((err: unknown) => log(`trimming the change feed failed: ${errorMessage(err)}`)), TRIM_EVERY_MS);
  trim.unref();
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}/`;
  return {
    url,
    openUrl: generatedToken === null ? url : `${url}?token=${generatedToken}`,
    token: generatedToken,
    port: address.port,
    async close() {
      clearInterval(trim);
      feed.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open event streams never end on their own.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
