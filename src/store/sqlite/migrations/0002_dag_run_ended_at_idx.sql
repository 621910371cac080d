-- The retention clean (`kiln db clean`, config `retention`) picks finished runs by end time,
-- oldest first, a batch at a time: this index serves that range scan and its keyset paging
-- (ended_at, dag_id, run_id) without reading other runs or any task instance.
CREATE INDEX dag_run_ended_at_idx ON dag_run (ended_at, dag_id, run_id);
