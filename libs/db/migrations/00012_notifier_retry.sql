-- +goose Up
-- A delivery notifier gave up on (temporary failures up to its attempt
-- limit) records the input event whose attempts those were. A later input
-- event of the same run — control's RetryRun re-emits the step's input under
-- a new id — tries it again from a fresh attempt count; redeliveries of the
-- same event do not. Deliveries sent, refused for good or of unknown outcome
-- are never sent again.
ALTER TABLE notifications ADD COLUMN given_up_by text;

-- +goose Down
ALTER TABLE notifications DROP COLUMN given_up_by;
