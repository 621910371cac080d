/**
 * Counts this process's PostgreSQL round trips. Preloaded (`node --import`) into a mode server
 * or a `kiln scheduler` of the postgres case: it wraps node-postgres's Client.prototype.query,
 * which every statement kiln sends goes through (drizzle's prepared statements, BEGIN, COMMIT,
 * ROLLBACK, SAVEPOINT). node-postgres sends one query and waits for its answer before the
 * next on a connection (no pipelining), so one call is one round trip to the server.
 *
 *   globalThis.__kilnBenchPgCounts()  -> { queries, begins, commits, rollbacks, byStatement: { name: { n, ms } } }, so far
 *   BENCH_PG_COUNT_FILE=<file>         at exit, the counts and process.resourceUsage() as JSON
 *
 * Bench-only: kiln itself is not changed, the wrapper only counts and calls through.
 */
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

// Worker threads inherit the preload: there, nothing talks to PostgreSQL, so load nothing.
if (isMainThread) {
  const { default: pg } = await import('pg');
  const counts = { queries: 0, begins: 0, commits: 0, rollbacks: 0 };
  // Per statement (kiln's prepared statements by name; BEGIN, COMMIT, ...): calls, and ms from
  // the call to its answer (the round trip, the server's work, and any wait for this thread).
  const byStatement = {};
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(config, ...rest) {
    counts.queries++;
    const text = typeof config === 'string' ? config : config?.text;
    let key = typeof config === 'object' && config?.name ? config.name : null;
    if (typeof text === 'string' && text.length <= 16) {
      const head = text.trim().toUpperCase();
      if (head === 'BEGIN' || head.startsWith('BEGIN ')) counts.begins++;
      else if (head === 'COMMIT') counts.commits++;
      else if (head === 'ROLLBACK') counts.rollbacks++;
      key ??= head;
    }
    key ??= typeof text === 'string' ? `${text.trim().slice(0, 40)}...` : 'other';
    const t0 = performance.now();
    const result = query.call(this, config, ...rest);
    if (result && typeof result.then === 'function') {
      result.then(() => {
        const e = (byStatement[key] ??= { n: 0, ms: 0 });
        e.n++;
        e.ms += performance.now() - t0;
      }, () => {});
    }
    return result;
  };
  const copy = () => ({ ...counts, byStatement: Object.fromEntries(Object.entries(byStatement).map(([k, v]) => [k, { ...v }])) });
  globalThis.__kilnBenchPgCounts = copy;
  const file = process.env.BENCH_PG_COUNT_FILE;
  if (file) process.on('exit', () => writeFileSync(file, JSON.stringify({ ...copy(), resourceUsage: process.resourceUsage() })));
}
