-- +goose Up
-- A consumer's lease on an event it is working on (libs/eventing, Lease):
-- taken in the claim transaction, renewed while the work runs with no
-- transaction open, deleted by the complete transaction (or on failure). A
-- delivery that finds a lease that has not expired does no work; one whose
-- holder died takes it over once it expires (takeovers counts those).
CREATE TABLE cmmsflow.event_leases (
    consumer   text        NOT NULL,
    event_id   text        NOT NULL,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    takeovers  integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, event_id)
);

-- +goose Down
DROP TABLE cmmsflow.event_leases;
