-- +goose Up
-- Cron ticks that had no run after their grace period, each recorded once so
-- that it is alerted once (and caught up once) whichever control instance
-- finds it first.
CREATE TABLE missed_ticks (
    pipeline    text NOT NULL REFERENCES pipelines (id),
    tick        timestamptz NOT NULL,
    caught_up   boolean NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, tick)
);

-- +goose Down
DROP TABLE missed_ticks;
