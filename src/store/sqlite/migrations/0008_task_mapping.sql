-- Dynamic task mapping: a task instance is (dag, run, task, map index), -1 for a task that is
-- not mapped (and for a mapped task not yet expanded). Its XComs are keyed the same way.
-- SQLite cannot change a primary key in place, so task_instance and xcom are rebuilt: a new
-- table with the new key, every row copied (as map index -1), the old one dropped (its index
-- goes with it), the new one renamed and its index made again. The migration runs in one
-- transaction (migrate.ts): a failure leaves the old tables as they were.

CREATE TABLE task_instance_0008 (
  dag_id            TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  task_id           TEXT NOT NULL,
  map_index         INTEGER NOT NULL DEFAULT -1,
  state             TEXT NOT NULL,
  try_number        INTEGER NOT NULL,
  max_tries         INTEGER NOT NULL,
  pool              TEXT NOT NULL,
  pool_slots        INTEGER NOT NULL,
  priority_weight   INTEGER NOT NULL,
  isolation         TEXT,
  queued_at         INTEGER,
  started_at        INTEGER,
  ended_at          INTEGER,
  duration_ms       REAL,
  pid               INTEGER,
  exit_code         INTEGER,
  signal            TEXT,
  error             TEXT,
  peak_rss_bytes    INTEGER,
  cpu_ms            REAL,
  last_heartbeat_at INTEGER,
  queued_by         TEXT,
  next_retry_at     INTEGER,
  first_poke_at     INTEGER,
  PRIMARY KEY (dag_id, run_id, task_id, map_index)
);
INSERT INTO task_instance_0008 (
  dag_id, run_id, task_id, map_index, state, try_number, max_tries, pool, pool_slots, priority_weight,
  isolation, queued_at, started_at, ended_at, duration_ms, pid, exit_code, signal, error,
  peak_rss_bytes, cpu_ms, last_heartbeat_at, queued_by, next_retry_at, first_poke_at)
SELECT
  dag_id, run_id, task_id, -1, state, try_number, max_tries, pool, pool_slots, priority_weight,
  isolation, queued_at, started_at, ended_at, duration_ms, pid, exit_code, signal, error,
  peak_rss_bytes, cpu_ms, last_heartbeat_at, queued_by, next_retry_at, first_poke_at
FROM task_instance;
DROP TABLE task_instance;
ALTER TABLE task_instance_0008 RENAME TO task_instance;
CREATE INDEX task_instance_state_heartbeat_idx ON task_instance (state, last_heartbeat_at);

CREATE TABLE xcom_0008 (
  dag_id    TEXT NOT NULL,
  run_id    TEXT NOT NULL,
  task_id   TEXT NOT NULL,
  map_index INTEGER NOT NULL DEFAULT -1,
  value     TEXT,
  PRIMARY KEY (dag_id, run_id, task_id, map_index)
);
INSERT INTO xcom_0008 (dag_id, run_id, task_id, map_index, value)
SELECT dag_id, run_id, task_id, -1, value FROM xcom;
DROP TABLE xcom;
ALTER TABLE xcom_0008 RENAME TO xcom;

-- The owed callbacks and the change feed name the task instance too: NULL for a run's row,
-- -1 for every task instance's row written before mapping existed.
ALTER TABLE callback_request ADD COLUMN map_index INTEGER;
UPDATE callback_request SET map_index = -1 WHERE task_id IS NOT NULL;
ALTER TABLE event ADD COLUMN map_index INTEGER;
UPDATE event SET map_index = -1 WHERE kind = 'ti';
