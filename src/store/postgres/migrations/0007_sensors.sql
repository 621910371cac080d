-- Sensors: the first poke of a sensor task instance; its timeout counts from there, across
-- reschedules, retries and restarts. NULL for every other task.
ALTER TABLE task_instance ADD COLUMN first_poke_at BIGINT;
