/**
 * `/metrics` over HTTP. The handler is a plain Node (req, res) function, so the scheduler's
 * own small server (below) and the web server can both mount it; `scrape()` gives the text
 * and content type for servers that build their own responses.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors.js';

export interface Scrapable {
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** Answers GET and HEAD of /metrics (any query string); 404 for other paths, 405 for other methods. */
export function metricsHandler(metrics: Scrapable): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: kiln serves /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    metrics.scrape().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${errorMessage(err)}\n`);
      },
    );
  };
}

export interface MetricsServer {
  /** Where it listens (the real port when 0 was asked for). */
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port (0: a free port) with the /metrics handler; rejects if the address is taken. */
export function startMetricsServer(metrics: Scrapable, host: string, port: number): Promise<MetricsServer> {
  const server = createServer(metricsHandler(metrics));
  // A scrape must never keep a stopping scheduler alive.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.unref();
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        host: address.address,
        port: address.port,
        url: `http://${shown}:${address.port}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
