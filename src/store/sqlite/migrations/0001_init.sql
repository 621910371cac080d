-- kiln metadata schema, SQLite. Must match src/store/sqlite/schema.ts.
-- Times are epoch milliseconds; JSON columns are TEXT.

CREATE TABLE dag (
  dag_id      TEXT PRIMARY KEY NOT NULL,
  file        TEXT NOT NULL,
  version     TEXT NOT NULL,
  serialized  TEXT NOT NULL,
  is_paused   INTEGER NOT NULL DEFAULT 0,
  next_run_at INTEGER,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE dag_version (
  dag_id     TEXT NOT NULL,
  version    TEXT NOT NULL,
  serialized TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (dag_id, version)
);

CREATE TABLE dag_run (
  dag_id       TEXT NOT NULL,
  run_id       TEXT NOT NULL,
  run_type     TEXT NOT NULL,
  logical_date INTEGER NOT NULL,
  state        TEXT NOT NULL,
  params       TEXT NOT NULL,
  dag_version  TEXT NOT NULL,
  queued_at    INTEGER NOT NULL,
  started_at   INTEGER,
  ended_at     INTEGER,
  claimed_by   TEXT,
  PRIMARY KEY (dag_id, run_id)
);
CREATE INDEX dag_run_state_idx ON dag_run (state);

CREATE TABLE task_instance (
  dag_id            TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  task_id           TEXT NOT NULL,
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
  PRIMARY KEY (dag_id, run_id, task_id)
);
-- One index serves every state query (zombies, stale queued, pool usage) by its prefix;
-- a second (state) index would only be rewritten on every state change.
CREATE INDEX task_instance_state_heartbeat_idx ON task_instance (state, last_heartbeat_at);

CREATE TABLE xcom (
  dag_id  TEXT NOT NULL,
  run_id  TEXT NOT NULL,
  task_id TEXT NOT NULL,
  value   TEXT,
  PRIMARY KEY (dag_id, run_id, task_id)
);

CREATE TABLE import_error (
  file  TEXT PRIMARY KEY NOT NULL,
  error TEXT NOT NULL,
  at    INTEGER NOT NULL
);

CREATE TABLE pool (
  name        TEXT PRIMARY KEY NOT NULL,
  slots       INTEGER NOT NULL,
  description TEXT
);
INSERT INTO pool (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

CREATE TABLE scheduler (
  id                TEXT PRIMARY KEY NOT NULL,
  hostname          TEXT NOT NULL,
  pid               INTEGER NOT NULL,
  started_at        INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL
);
