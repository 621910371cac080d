-- Runs over time: every run stores the data interval it covers, never recomputed. Runs made
-- before this migration get the empty interval at their logical date.
ALTER TABLE dag_run ADD COLUMN data_interval_start BIGINT;
ALTER TABLE dag_run ADD COLUMN data_interval_end BIGINT;
UPDATE dag_run SET data_interval_start = logical_date, data_interval_end = logical_date;
ALTER TABLE dag_run ALTER COLUMN data_interval_start SET NOT NULL;
ALTER TABLE dag_run ALTER COLUMN data_interval_end SET NOT NULL;
-- The previous successful run, and a backfill's run per logical date, are found by this.
CREATE INDEX dag_run_logical_date_idx ON dag_run (dag_id, logical_date);
