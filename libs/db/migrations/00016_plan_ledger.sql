-- +goose Up
-- pmgen's ledger, for a mapped (read-only) source: the source's maintenance
-- plans cannot be advanced, so pmgen keeps each plan's schedule here once it
-- has generated for the plan (until then the source's next_due_date is the
-- starting point), and records each occurrence it created a work order for.
-- Plan ids are the source's; there are no foreign keys, the source may be
-- views.
CREATE TABLE cmmsflow.plan_ledger (
    plan_id              bigint PRIMARY KEY,
    next_due_date        date,
    next_due_meter       numeric(12, 1),
    schedule_anchor_day  smallint CHECK (schedule_anchor_day BETWEEN 1 AND 31),
    last_completed_date  date,
    last_completed_meter numeric(12, 1),
    run_id               text NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per (plan, due occurrence) whose work order pmgen created through
-- the CMMS backend: the business key work_orders (plan_id, due_date) is in
-- the default source.
CREATE TABLE cmmsflow.plan_occurrences (
    plan_id    bigint NOT NULL,
    due_date   date NOT NULL,
    wo_number  text NOT NULL UNIQUE,
    run_id     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, due_date)
);

-- +goose Down
DROP TABLE cmmsflow.plan_occurrences;
DROP TABLE cmmsflow.plan_ledger;
