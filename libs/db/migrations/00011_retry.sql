-- +goose Up
-- control's RetryRun finds the event that fed a run's step in the outbox
-- (kept eventing.PublishedRetention after publishing): by run and type.
CREATE INDEX outbox_run_type_idx ON outbox ((attributes->>'run_id'), event_type);

-- +goose Down
DROP INDEX outbox_run_type_idx;
