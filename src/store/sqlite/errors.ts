/**
 * SQLite errors about the database file or its disk (full, read-only, I/O, corrupt, locked)
 * are reported with the file's path: "database or disk is full" alone does not say which
 * disk. Errors about a statement (constraints, syntax) pass through unchanged.
 */
import { resolve } from 'node:path';
import { KilnError } from '../../errors.js';

/** better-sqlite3's SqliteError codes (extended ones included, e.g. SQLITE_IOERR_WRITE). */
const FILE_ERRORS = /^SQLITE_(FULL|READONLY|IOERR|CORRUPT|NOTADB|CANTOPEN|PERM|BUSY|LOCKED|PROTOCOL)/;

/** For describeStoreErrors (and the store's constructor). */
export function describeSqliteError(path: string): (err: unknown) => unknown {
  const file = path === ':memory:' ? path : resolve(path);
  return (err) => {
    const code = (err as { code?: unknown } | null)?.code;
    if (err instanceof KilnError || !(err instanceof Error) || typeof code !== 'string' || !FILE_ERRORS.test(code)) return err;
    return new KilnError('STORE', `SQLite database ${file}: ${err.message} (${code})`, { cause: err });
  };
}
