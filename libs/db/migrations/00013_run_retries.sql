-- +goose Up
-- How many times control's RetryRun re-ran the run (Airflow's clear_number):
-- each failure of a run is alerted once, a retried run's failure too.
ALTER TABLE runs ADD COLUMN retries integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE runs DROP COLUMN retries;
