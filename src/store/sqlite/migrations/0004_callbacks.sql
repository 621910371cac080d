-- Callbacks that always fire: a row per callback owed, written in the same transaction as the
-- state change that owes it and deleted once the callback has run (see scheduler/callbacks.ts).
CREATE TABLE callback_request (
  id TEXT PRIMARY KEY NOT NULL,
  dag_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  task_id TEXT,
  try_number INTEGER,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  error TEXT,
  exit_code INTEGER,
  signal TEXT,
  created_at INTEGER NOT NULL,
  owner TEXT
);
CREATE INDEX callback_request_run_idx ON callback_request (dag_id, run_id);
-- Why a failed run failed: task_failed or timed_out (dagrunTimeout).
ALTER TABLE dag_run ADD COLUMN failure_reason TEXT;
