/**
 * Who may use the web server: configured tokens with roles (viewer reads, admin changes), a
 * generated token only on loopback, Bearer and the session cookie, and the refusals (401 with
 * no credentials, 403 for a viewer's change, refusing to listen beyond loopback without tokens).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { startWebServer, type WebServer } from '../../src/server/server.js';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { scratchProject } from '../helpers/cli.js';

const ADMIN = 'admin-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';

describe('web server auth', () => {
  const cwd = scratchProject('kiln-web-auth-');
  const env = { KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_WEBSERVER_AUTH: JSON.stringify({ tokens: [{ token: ADMIN, role: 'admin', name: 'ops' }, { token: VIEWER, role: 'viewer' }] }) };
  let store: Store;
  let web: WebServer;

  beforeAll(async () => {
    const config = await loadConfig({ cwd, env });
    store = await createStore(config.databaseUrl);
    await store.migrate();
    web = await startWebServer({ store, config, host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await web?.close();
    await store?.close();
  });

  const call = (path: string, init: RequestInit = {}) => fetch(`${web.url}api/v1${path}`, init);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const put = (headers: Record<string, string>) => call('/pools/p1', { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ slots: 2 }) });

  it('prints no token in the URL when tokens are configured', () => {
    expect(web.token).toBeNull();
    expect(web.openUrl).toBe(web.url);
  });

  it('refuses requests without valid credentials with 401 UNAUTHORIZED', async () => {
    for (const headers of [{}, bearer('wrong-token-0123456789'), { cookie: 'kiln_session=forged' }] as Array<Record<string, string>>) {
      const res = await call('/dags', { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    }
    expect((await call('/events')).status).toBe(401);
  });

  it('lets a viewer read but not change anything; an admin may', async () => {
    expect((await call('/pools', { headers: bearer(VIEWER) })).status).toBe(200);
    const refused = await put(bearer(VIEWER));
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    expect((await store.listPools()).map((p) => p.name)).not.toContain('p1');
    expect((await put(bearer(ADMIN))).status).toBe(200);
    expect((await store.listPools()).map((p) => p.name)).toContain('p1');
  });

  it('swaps a token in the URL for a session cookie with the same role', async () => {
    const bad = await fetch(`${web.url}?token=nope`, { redirect: 'manual' });
    expect(bad.status).toBe(401);
    const viewer = await fetch(`${web.url}?token=${VIEWER}`, { redirect: 'manual' });
    expect(viewer.status).toBe(302);
    const cookie = viewer.headers.get('set-cookie')!.split(';')[0]!;
    expect((await call('/dags', { headers: { cookie } })).status).toBe(200);
    expect((await put({ cookie })).status).toBe(403);
    const admin = (await fetch(`${web.url}?token=${ADMIN}`, { redirect: 'manual' })).headers.get('set-cookie')!.split(';')[0]!;
    expect(admin).not.toBe(cookie);
    expect((await put({ cookie: admin })).status).toBe(200);
  });

  it('refuses to listen beyond loopback without configured tokens, and listens with them', async () => {
    const bare = await loadConfig({ cwd, env: { KILN_DATABASE_URL: env.KILN_DATABASE_URL } });
    await expect(startWebServer({ store, config: bare, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/webserverAuth/) });
    const withTokens = await loadConfig({ cwd, env });
    await expect(startWebServer({ store, config: withTokens, host: '127.0.0.1', port: web.port })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/port is in use/) });
    const open = await startWebServer({ store, config: withTokens, host: '0.0.0.0', port: 0 });
    try {
      expect((await fetch(`http://127.0.0.1:${open.port}/api/v1/health`, { headers: bearer(VIEWER) })).status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('checks the webserverAuth setting', async () => {
    await expect(loadConfig({ cwd, env: { KILN_WEBSERVER_AUTH: '{"tokens":[{"token":"short","role":"admin"}]}' } })).rejects.toThrow(/at least 16 characters/);
    await expect(loadConfig({ cwd, env: { KILN_WEBSERVER_AUTH: JSON.stringify({ tokens: [{ token: ADMIN, role: 'root' }] }) } })).rejects.toThrow(/viewer, admin/);
    await expect(loadConfig({ cwd, env: { KILN_WEBSERVER_AUTH: 'nope' } })).rejects.toThrow(/must be JSON/);
  });
});
