-- +goose Up
-- The automation tables: pipelines, runs and steps (Airflow's DAGs, DAG runs and
-- task instances), processed events (dedupe), the outbox, dead letters and
-- notifications.

CREATE TABLE pipelines (
    id         text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
    run_id          text PRIMARY KEY,
    pipeline        text NOT NULL REFERENCES pipelines (id),
    state           text NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed', 'cancelled', 'skipped')),
    source          text NOT NULL,
    conf            jsonb NOT NULL DEFAULT '{}',
    logical_date    timestamptz NOT NULL,
    queued_at       timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    ended_at        timestamptz,
    error           text NOT NULL DEFAULT '',
    trace_id        text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_pipeline_idx ON runs (pipeline, queued_at DESC);

CREATE TABLE steps (
    run_id     text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step       text NOT NULL,
    position   integer NOT NULL,
    state      text NOT NULL CHECK (state IN ('pending', 'running', 'up_for_retry', 'success', 'failed', 'skipped')),
    attempts   integer NOT NULL DEFAULT 0,
    started_at timestamptz,
    ended_at   timestamptz,
    error      text NOT NULL DEFAULT '',
    summary    text NOT NULL DEFAULT '',
    figures    jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step)
);

-- An event id a consumer has handled; inserted in the same transaction as the
-- handler's effects, so a redelivered event finds its row and does nothing.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Events written with the state change that caused them; the relay publishes
-- rows whose published_at is NULL, after commit and on start-up.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    attributes   jsonb NOT NULL,
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;

-- Events a consumer gave up on (undecodable, invalid, unknown type, handler
-- said permanent): acked so Pub/Sub stops retrying, kept here with the reason.
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer    text NOT NULL,
    event_id    text NOT NULL DEFAULT '',
    event_type  text NOT NULL DEFAULT '',
    run_id      text NOT NULL DEFAULT '',
    pipeline    text NOT NULL DEFAULT '',
    reason      text NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    data        bytea,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);

-- Everything notifier delivers (in-app inbox, email, webhooks). dedupe_key
-- makes delivery idempotent across redeliveries.
CREATE TABLE notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key    text NOT NULL UNIQUE,
    run_id        text NOT NULL DEFAULT '',
    channel       text NOT NULL CHECK (channel IN ('inbox', 'email', 'webhook')),
    technician_id bigint REFERENCES technicians (id) ON DELETE SET NULL,
    recipient     text NOT NULL,
    subject       text NOT NULL,
    body          text NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    error         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    read_at       timestamptz
);
CREATE INDEX notifications_technician_idx ON notifications (technician_id, created_at DESC);

-- +goose Down
DROP TABLE notifications, dead_letters, outbox, processed_events, steps, runs, pipelines;
