/**
 * A web server over a scratch project, for the API tests: the project's database (SQLite or
 * PostgreSQL) seeded through the real CLI (`dags test` runs test/fixtures/web/web_demo.ts,
 * `dags list` records the broken file's import error), then served in this process on a free
 * port and reached over real HTTP.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { startWebServer, type WebServer } from '../../src/server/server.js';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/types.js';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import type { DatabaseUnderTest } from '../helpers/databases.js';

export const WEB_FIXTURES = join(REPO, 'test/fixtures/web');

export interface WebProject {
  cwd: string;
  /** `Authorization: Bearer` with the server's generated admin token. */
  auth: Record<string, string>;
  env: Record<string, string>;
  store: Store;
  web: WebServer;
  // The tests read response bodies freely; their shapes are checked by the assertions.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/**
 * `dagsFolder` (default the web fixtures) and `seeds` (each the arguments of one CLI command,
 * run in order instead of the default seeding) let a suite bring its own DAGs.
 */
export async function webProject(db: DatabaseUnderTest, options: { seed?: boolean; dagsFolder?: string; seeds?: string[][] } = {}): Promise<WebProject> {
  const cwd = scratchProject('kiln-web-');
  const env = { KILN_DATABASE_URL: db.url(cwd), KILN_DAGS_FOLDER: options.dagsFolder ?? WEB_FIXTURES, KILN_EXECUTOR: 'thread' };
  if (options.seeds !== undefined) {
    for (const args of options.seeds) {
      const seeded = await runKiln(args, { cwd, env });
      expect(seeded.code, `kiln ${args.join(' ')}: ${seeded.stderr}`).toBeLessThanOrEqual(1);
    }
  } else if (options.seed !== false) {
    const seeded = await runKiln(['dags', 'test', 'web_demo', '--run-id', 'seed', '--params', '{"repeat":2}', '--json'], { cwd, env });
    expect(seeded.code, seeded.stderr).toBe(0);
    const listed = await runKiln(['dags', 'list', '--json'], { cwd, env });
    expect(listed.code, listed.stderr).toBe(0);
  }
  const config = await loadConfig({ cwd, env });
  const store = await createStore(config.databaseUrl);
  await store.migrate();
  const web = await startWebServer({ store, config, host: '127.0.0.1', port: 0 });
  const base = web.url.replace(/\/$/, '');
  return {
    cwd,
    auth: { authorization: `Bearer ${web.token}` },
    env,
    store,
    web,
    async api(path, init = {}) {
      const { json, ...rest } = init;
      const res = await fetch(`${base}/api/v1${path}`, {
        ...rest,
        headers: { authorization: `Bearer ${web.token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...(rest.headers as Record<string, string> | undefined) },
        body: json === undefined ? rest.body : JSON.stringify(json),
      });
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      return { status: res.status, body: type.includes('json') && text !== '' ? JSON.parse(text) : text };
    },
    async close() {
      await web.close();
      await store.close();
    },
  };
}
