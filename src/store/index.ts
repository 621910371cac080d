import { ConfigError } from '../errors.js';
import type { Store } from './types.js';

export type * from './types.js';

/**
 * Opens the store named by a URL: `sqlite:<path>` / a bare path / `file:<path>` for SQLite,
 * `postgres://` or `postgresql://` for PostgreSQL. Only the chosen dialect's driver is loaded.
 */
export async function createStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { openPostgresStore } = await import('./postgres/store.js');
    return openPostgresStore(url);
  }
  const path = url.replace(/^(sqlite|file):(\/\/)?/, '');
  if (path.length === 0) throw new ConfigError(`database URL '${url}' names no SQLite file`);
  if (/^[a-z]+:\/\//i.test(url) && !/^(sqlite|file):/.test(url)) throw new ConfigError(`database URL '${url}': only sqlite: paths and postgres:// URLs are supported`);
  const { openSqliteStore } = await import('./sqlite/store.js');
  return openSqliteStore(path);
}
