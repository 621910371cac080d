/**
 * The web server's Hono app: the JSON API under /api/v1 (thin routes over app/ use cases),
 * the change feed over SSE, and the browser app's files. Every response carries the security
 * headers; a state-changing request must come from this server's own origin and carry JSON.
 */
import { Hono, type Context } from 'hono';
import { SESSION_COOKIE, type WebAuth } from './auth.js';
import type { ServerDeps } from './deps.js';
import { errorBody, HttpError, respondError } from './errors.js';
import { openApiDocument } from './openapi.js';
import { dagRoutes } from './routes/dags.js';
import { poolRoutes } from './routes/pools.js';
import { runRoutes } from './routes/runs.js';
import { systemRoutes } from './routes/system.js';
import { taskRoutes } from './routes/tasks.js';
import { CONTENT_SECURITY_POLICY, uiFiles } from './static.js';

export const API_PREFIX = '/api/v1';

export interface WebAppOptions {
  /** Who may use the UI and the API (see auth.ts). */
  auth: WebAuth;
  uiDir?: URL;
  /**
   * Host headers accepted (host:port, lower case); undefined: any. A server bound to loopback
   * accepts only its loopback names, so a web page whose DNS name is rebound to 127.0.0.1 is
   * refused (DNS rebinding).
   */
  allowedHosts?: readonly string[];
  /**
   * The Prometheus exposition served at /metrics (same auth as the API, for viewers too):
   * the scheduler's registry when the web server runs inside `kiln scheduler`, else the
   * database gauges. null: not available (yet).
   */
  metrics?: () => Promise<{ contentType: string; body: string } | null>;
}

const READS = ['GET', 'HEAD', 'OPTIONS'];

export function createWebApp(deps: ServerDeps, options: WebAppOptions): Hono {
  const { auth } = options;
  const app = new Hono();
  app.onError((err, c) => respondError(err, c));
  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no such resource: ${c.req.method} ${c.req.path}`), 404));

  app.use('*', async (c, next) => {
    // On every response, errors included.
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'no-referrer');
    c.header('content-security-policy', CONTENT_SECURITY_POLICY);
    c.header('x-frame-options', 'DENY');
    // DNS rebinding: a server on loopback answers only to its own loopback names.
    const host = c.req.header('host')?.toLowerCase();
    if (options.allowedHosts !== undefined && (host === undefined || !options.allowedHosts.includes(host))) {
      throw new HttpError(403, 'FORBIDDEN', `host '${host ?? ''}' is not this server's`);
    }
    if (c.req.path.startsWith('/api/') || c.req.path === '/metrics') {
      const who = auth.authenticate(c);
      if (who === null) throw new HttpError(401, 'UNAUTHORIZED', 'sign in: open the URL kiln printed (it ends in ?token=...), or send Authorization: Bearer <token>');
      if (!READS.includes(c.req.method) && who.role !== 'admin') throw new HttpError(403, 'FORBIDDEN', 'a viewer cannot change anything');
    }
    // Cross-site requests may not change anything: a browser sends Origin on every POST, PUT
    // and DELETE, and it must be this server's own. (JSON-only bodies also keep plain HTML
    // forms out: they cannot send application/json.)
    if (!READS.includes(c.req.method)) {
      const origin = c.req.header('origin');
      if (origin === 'null') throw new HttpError(403, 'FORBIDDEN', 'requests from an opaque origin are refused');
      if (origin !== undefined && host !== undefined && originHost(origin) !== host) throw new HttpError(403, 'FORBIDDEN', `cross-origin request from ${origin} refused`);
    }
    await next();
  });

  const api = new Hono();
  for (const routes of [dagRoutes, runRoutes, taskRoutes, poolRoutes, systemRoutes]) api.route('/', routes(deps));
  api.get('/openapi.json', (c) => c.json(openApiDocument('1')));
  app.route(API_PREFIX, api);
  app.get('/metrics', async (c) => {
    const scraped = options.metrics === undefined ? null : await options.metrics();
    if (scraped === null) throw new HttpError(404, 'NOT_FOUND', 'metrics are not turned on in this process');
    return c.body(scraped.body, 200, { 'content-type': scraped.contentType });
  });

  const ui = uiFiles(options.uiDir);
  app.get('/', (c) => {
    // The printed URL's token is swapped for the session cookie, then taken out of the address bar.
    const token = c.req.query('token');
    if (token !== undefined) {
      const session = auth.sessionFor(token);
      if (session === null) return signInPage(c, 'That token is not valid for this server.');
      c.header('set-cookie', `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Strict`);
      return c.redirect('/', 302);
    }
    return auth.authenticate(c) === null ? signInPage(c) : ui(c, 'index.html');
  });
  app.get('/assets/:file', (c) => ui(c, c.req.param('file')));
  return app;
}

/** A page with no script: how to sign in. */
function signInPage(c: Context, problem?: string): Response {
  const note = problem === undefined ? '' : `<p><strong>${problem}</strong></p>`;
  return c.html(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kiln: sign in</title><link rel="stylesheet" href="/assets/app.css"></head>` +
      `<body><main><h1>kiln</h1>${note}<p>Open the address <code>kiln webserver</code> (or <code>kiln scheduler --webserver</code>) printed when it started: ` +
      `it ends in <code>?token=...</code>. With configured tokens (<code>webserverAuth</code>), add <code>?token=&lt;your token&gt;</code> to this address.</p></main></body></html>`,
    401,
  );
}

function originHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}
