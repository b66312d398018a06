-- +goose Up
-- The mapped sources applied by `cmmsflow source apply` (libs/source): one
-- row per mapping schema, with the source contract version it was checked
-- against. A service whose SOURCE_SCHEMA is not cmms refuses to start
-- unless its schema has a row here of the contract version it was built
-- for.
CREATE TABLE cmmsflow.source_contract (
    schema_name      text PRIMARY KEY,
    contract_version integer NOT NULL,
    file_sha256      text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    applied_at       timestamptz NOT NULL DEFAULT now(),
    applied_by       text NOT NULL
);

-- +goose Down
DROP TABLE cmmsflow.source_contract;
