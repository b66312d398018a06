-- +goose Up
-- reporter: the weekly KPI reports stored in the bucket (one row per ISO
-- week; regenerating a week replaces its row, as it overwrites its objects),
-- and the indexes its KPI queries use on a large work-order history.
CREATE TABLE reports (
    iso_week     text PRIMARY KEY,                -- e.g. 2026-W47
    week_start   date NOT NULL,                   -- its Monday
    run_id       text NOT NULL,                   -- the run that last generated it
    generated_at timestamptz NOT NULL DEFAULT now(),
    pdf_uri      text NOT NULL,
    html_uri     text NOT NULL,
    csv_uri      text NOT NULL,
    objects      jsonb NOT NULL DEFAULT '[]',      -- every stored object: name, uri, bytes, content_type
    kpis         jsonb NOT NULL DEFAULT '{}'       -- headline figures
);
CREATE INDEX reports_week_start_idx ON reports (week_start DESC);

-- Work orders completed in a period (completed counts, MTTR, the trend).
CREATE INDEX work_orders_completed_idx ON work_orders (completed_at) WHERE completed_at IS NOT NULL;
-- Corrective work orders opened in MTBF's trailing window.
CREATE INDEX work_orders_corrective_created_idx ON work_orders (created_at) INCLUDE (asset_id, status)
    WHERE type = 'CORRECTIVE';
-- Preventive work orders due in a week (PM compliance).
CREATE INDEX work_orders_preventive_due_idx ON work_orders (due_date) WHERE type = 'PREVENTIVE';

-- +goose Down
DROP INDEX work_orders_preventive_due_idx, work_orders_corrective_created_idx, work_orders_completed_idx;
DROP TABLE reports;
