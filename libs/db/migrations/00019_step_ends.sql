-- +goose Up
-- Every attempt of a step sends one started event and one end event
-- (success, failure, or a failure to be retried), but Pub/Sub may deliver
-- the end first. starts_minus_ends counts the difference: a start counts an
-- attempt unless an end came ahead of it (the count is negative), an end
-- counts one unless its start came (the count is positive). So a run that
-- succeeded never shows a step at attempt 0 while its start is on its way,
-- and no attempt is counted twice.
ALTER TABLE cmmsflow.steps ADD COLUMN starts_minus_ends integer NOT NULL DEFAULT 0;
UPDATE cmmsflow.steps SET starts_minus_ends = 1 WHERE state = 'running';

-- +goose Down
ALTER TABLE cmmsflow.steps DROP COLUMN starts_minus_ends;
