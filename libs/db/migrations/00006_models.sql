-- +goose Up
-- The model registry: every model the trainer fitted, its holdout metrics and
-- the gate's decision. At most one row is the champion, the model the
-- deployer serves and the next candidate is compared with.
CREATE TABLE models (
    version              text PRIMARY KEY,                  -- v<snapshot date>-<hash of data and learner>
    run_id               text NOT NULL,
    kind                 text NOT NULL,                     -- logistic | gbt
    artifact_name        text NOT NULL,                     -- models/<version>/model.json in the bucket
    artifact_uri         text NOT NULL,                     -- gs://bucket/models/<version>/model.json
    training_fingerprint text NOT NULL,                     -- sha256:<hex> of training.parquet
    metrics              jsonb NOT NULL,                    -- holdout roc_auc, pr_auc, brier, ece, ...
    champion             boolean NOT NULL DEFAULT false,
    promoted             boolean NOT NULL DEFAULT false,    -- the gate's decision for this model
    gate_reason          text NOT NULL DEFAULT '',
    compared_with        text,                              -- the champion it was gated against
    champion_metrics     jsonb,                             -- that champion's metrics on this model's holdout
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    promoted_at          timestamptz
);
CREATE UNIQUE INDEX models_one_champion ON models ((true)) WHERE champion;
CREATE INDEX models_created_idx ON models (created_at DESC);

-- +goose Down
DROP TABLE models;
