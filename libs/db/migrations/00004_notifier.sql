-- +goose Up
-- Notifier's delivery bookkeeping on the notifications table.
--
-- A delivery row moves pending → sending → sent | failed. 'sending' is a
-- claim: the attempt that set it (under notifier's per-run advisory lock)
-- is the only one that may send the row. A row found still 'sending' by a
-- later attempt belonged to an attempt that died between claim and mark; it
-- is marked failed ("outcome unknown") and never sent again, so a send
-- happens at most once. failed + retryable rows (429, 5xx, timeouts) are
-- claimed again by the next delivery of the event, up to notifier's attempt
-- limit.
ALTER TABLE notifications
    ADD COLUMN kind       text NOT NULL DEFAULT '',   -- wo_digest, pm_summary, alert, ...
    ADD COLUMN pipeline   text NOT NULL DEFAULT '',
    ADD COLUMN body_html  text NOT NULL DEFAULT '',   -- email: the HTML alternative of body
    ADD COLUMN target     text NOT NULL DEFAULT '',   -- webhook: the configured target id (never the secret URL)
    ADD COLUMN attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN retryable  boolean NOT NULL DEFAULT false,
    ADD COLUMN claimed_at timestamptz;
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed'));
CREATE INDEX notifications_run_idx ON notifications (run_id, channel);

-- +goose Down
DROP INDEX notifications_run_idx;
UPDATE notifications SET status = 'failed' WHERE status = 'sending';
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'failed'));
ALTER TABLE notifications
    DROP COLUMN kind, DROP COLUMN pipeline, DROP COLUMN body_html, DROP COLUMN target,
    DROP COLUMN attempts, DROP COLUMN retryable, DROP COLUMN claimed_at;
