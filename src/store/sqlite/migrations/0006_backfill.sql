-- Backfill requests (see scheduler/backfill.ts): the dates to run, in order, and a cursor that
-- moves by compare-and-set; driven by the `kiln backfill` process or, with --queue, by schedulers.
CREATE TABLE backfill (
  id TEXT PRIMARY KEY NOT NULL,
  dag_id TEXT NOT NULL,
  from_date INTEGER NOT NULL,
  to_date INTEGER NOT NULL,
  reprocess TEXT NOT NULL,
  max_active_runs INTEGER NOT NULL,
  backwards INTEGER NOT NULL,
  params TEXT NOT NULL,
  dates TEXT NOT NULL,
  cursor INTEGER NOT NULL,
  driver TEXT,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX backfill_state_idx ON backfill (state);
