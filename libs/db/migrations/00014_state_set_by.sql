-- +goose Up
-- Who set a run's or a step's state by hand (control's SetRunState and
-- SetStepState, Airflow's "mark success/failed"); empty when it came from the
-- steps' own events. A run stopped by hand is not alerted as a failure, and
-- a step's late events do not overwrite a state set by hand.
ALTER TABLE runs ADD COLUMN state_set_by text NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN state_set_by text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE steps DROP COLUMN state_set_by;
ALTER TABLE runs DROP COLUMN state_set_by;
