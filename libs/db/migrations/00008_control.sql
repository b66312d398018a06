-- +goose Up
-- control's API: idempotent manual triggers and keyset paging over runs and
-- a technician's inbox, newest first.
ALTER TABLE runs ADD COLUMN idempotency_key text;
-- A repeated trigger with the same key finds the run the first one created.
CREATE UNIQUE INDEX runs_idempotency_idx ON runs (pipeline, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- ListRuns: (queued_at, run_id) is the page key, with or without filters.
CREATE INDEX runs_page_idx ON runs (queued_at DESC, run_id DESC);
CREATE INDEX runs_pipeline_page_idx ON runs (pipeline, queued_at DESC, run_id DESC);
CREATE INDEX runs_state_page_idx ON runs (state, queued_at DESC, run_id DESC);
DROP INDEX runs_pipeline_idx;
-- ListNotifications: a technician's inbox, (created_at, id) is the page key.
CREATE INDEX notifications_inbox_idx ON notifications (technician_id, created_at DESC, id DESC) WHERE channel = 'inbox';

-- +goose Down
DROP INDEX notifications_inbox_idx;
CREATE INDEX runs_pipeline_idx ON runs (pipeline, queued_at DESC);
DROP INDEX runs_state_page_idx, runs_pipeline_page_idx, runs_page_idx, runs_idempotency_idx;
ALTER TABLE runs DROP COLUMN idempotency_key;
