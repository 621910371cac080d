-- Dynamic task mapping: a task instance is (dag, run, task, map index), -1 for a task that is
-- not mapped (and for a mapped task not yet expanded). Its XComs are keyed the same way.
-- ADD COLUMN with a constant default rewrites no row (existing rows read -1); the new
-- primary keys are built once over the existing rows. The migration runs in one transaction
-- (migrate.ts): a failure leaves the old tables as they were.
ALTER TABLE task_instance ADD COLUMN map_index INTEGER NOT NULL DEFAULT -1;
ALTER TABLE task_instance DROP CONSTRAINT task_instance_pkey;
ALTER TABLE task_instance ADD PRIMARY KEY (dag_id, run_id, task_id, map_index);

ALTER TABLE xcom ADD COLUMN map_index INTEGER NOT NULL DEFAULT -1;
ALTER TABLE xcom DROP CONSTRAINT xcom_pkey;
ALTER TABLE xcom ADD PRIMARY KEY (dag_id, run_id, task_id, map_index);

-- The owed callbacks and the change feed name the task instance too: NULL for a run's row,
-- -1 for every task instance's row written before mapping existed.
ALTER TABLE callback_request ADD COLUMN map_index INTEGER;
UPDATE callback_request SET map_index = -1 WHERE task_id IS NOT NULL;
ALTER TABLE event ADD COLUMN map_index INTEGER;
UPDATE event SET map_index = -1 WHERE kind = 'ti';
