-- +goose Up
-- max_active_runs: a triggered run may wait queued for a slot and start later,
-- in another event's transaction; it keeps its trigger's trace context here.
ALTER TABLE runs ADD COLUMN traceparent text NOT NULL DEFAULT '';
-- The queue of a pipeline, oldest first.
CREATE INDEX runs_queue_idx ON runs (pipeline, queued_at, run_id) WHERE state = 'queued';

-- +goose Down
DROP INDEX runs_queue_idx;
ALTER TABLE runs DROP COLUMN traceparent;
