-- +goose Up
-- pmgen: the day of the month a month- or year-based calendar schedule keeps.
-- A plan due on the 31st is due on Feb 28 (29) in February and on the 31st
-- again in March; next_due_date alone cannot remember that, so the anchor is
-- stored beside it. NULL means "the day of next_due_date". pmgen ignores an
-- anchor that does not match next_due_date (someone moved the date by hand).
ALTER TABLE maintenance_plans
    ADD COLUMN schedule_anchor_day smallint CHECK (schedule_anchor_day BETWEEN 1 AND 31);

-- +goose Down
ALTER TABLE maintenance_plans DROP COLUMN schedule_anchor_day;
