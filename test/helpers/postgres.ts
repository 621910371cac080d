/**
 * PostgreSQL for tests: where it is, whether it answers, and an isolated schema per test so
 * parallel test files never see each other's tables.
 *
 *   const url = await postgresTestUrl('PostgreSQL store tests'); // null: skip (warned)
 *   const db = await createTestSchema(url);  // db.url carries ?schema=<unique name>
 *   ... openPostgresStore(db.url) ...
 *   await db.drop();
 *
 * The server is KILN_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
 * When it does not answer: with CI set, postgresTestUrl() throws (a CI run must not pass by
 * skipping); otherwise it warns once per suite and returns null.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_POSTGRES_TEST_URL = 'postgres://postgres@127.0.0.1:5432/test';

const probes = new Map<string, Promise<string | undefined>>();

/** Resolves to undefined when a server answers at `url`, else to the connection error. */
function probe(url: string): Promise<string | undefined> {
  let p = probes.get(url);
  if (p !== undefined) return p;
  p = (async () => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      await client.end().catch(() => {});
    }
  })();
  probes.set(url, p);
  return p;
}

/**
 * The PostgreSQL test URL, or null when no server answers there (and CI is not set).
 * `suite` names what is skipped in the warning.
 */
export async function postgresTestUrl(suite = 'PostgreSQL tests'): Promise<string | null> {
  const url = process.env.KILN_TEST_POSTGRES_URL || DEFAULT_POSTGRES_TEST_URL;
  const error = await probe(url);
  if (error === undefined) return url;
  const message = `PostgreSQL not reachable at ${url} (${error})`;
  if (process.env.CI) throw new Error(`${message}; CI is set, so ${suite} may not be skipped`);
  console.warn(`${message}: skipping ${suite}`);
  return null;
}

export interface TestSchema {
  /** The base URL plus `?schema=<name>`: what kiln's store and CLI accept. */
  url: string;
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

let counter = 0;

/** Creates an empty schema with a name unique to this process and call. */
export async function createTestSchema(baseUrl: string, prefix = 'kiln_test'): Promise<TestSchema> {
  const schema = `${prefix}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await adminQuery(baseUrl, `CREATE SCHEMA "${schema}"`);
  const u = new URL(baseUrl);
  u.searchParams.set('schema', schema);
  return {
    url: u.toString(),
    schema,
    drop: () => adminQuery(baseUrl, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
