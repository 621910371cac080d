-- The change feed: one row per committed state change of a task instance or a run, appended
-- in the same transaction as the change (Store.write, createRun, startRun). Readers (the web
-- server's event stream) follow it by id. Ids are never reused: trimming never deletes the
-- newest row, so the next id is always above every id handed out (no AUTOINCREMENT needed,
-- which would write sqlite_sequence on every commit).
CREATE TABLE event (
  id         INTEGER PRIMARY KEY NOT NULL,
  at         INTEGER NOT NULL,
  kind       TEXT NOT NULL,
  dag_id     TEXT NOT NULL,
  run_id     TEXT NOT NULL,
  task_id    TEXT,
  state      TEXT NOT NULL,
  try_number INTEGER
);
