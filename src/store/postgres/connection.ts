/**
 * Turns a kiln PostgreSQL URL into node-postgres pool options.
 *
 * Supported beyond what node-postgres itself reads from a connection string (host, port,
 * user, password, database, sslmode, `options`, application_name, ...):
 * - `?schema=NAME`: kiln's tables live in schema NAME. It becomes `-c search_path=NAME` in the
 *   connection's startup options (appended to any `options=` already given) and migrate()
 *   creates the schema if it is missing. NAME must be a plain lower-case identifier
 *   ([a-z_][a-z0-9_]*), so it means the same quoted (CREATE SCHEMA) and unquoted (search_path).
 * - `?options=-c search_path=NAME` also works (node-postgres passes it through), but then the
 *   schema must already exist.
 */
import type pg from 'pg';
import { ConfigError } from '../../errors.js';

export interface PostgresTarget {
  pool: pg.PoolConfig;
  schema: string | undefined;
  /** The URL with the password masked, for messages. */
  display: string;
}

export function parsePostgresUrl(url: string): PostgresTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new ConfigError(`database URL '${url}' is not a valid URL: ${(err as Error).message}`);
  }
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
    throw new ConfigError(`database URL: schema '${schema}' must be a plain lower-case identifier (a-z, 0-9, _)`);
  }
  // node-postgres lets the connection string override explicit options, so a given
  // `options=` is moved out of the URL and merged with the search_path.
  let options: string | undefined;
  if (schema !== undefined) {
    const given = u.searchParams.get('options');
    u.searchParams.delete('options');
    options = `${given === null ? '' : `${given} `}-c search_path=${schema}`;
  }
  const pool: pg.PoolConfig = { connectionString: u.toString(), ...(options === undefined ? {} : { options }) };
  const masked = new URL(u);
  if (masked.password !== '') masked.password = '***';
  return { pool, schema, display: masked.toString() };
}
