-- +goose Up
-- Where the deployer serves models (DEPLOY_ENGINE local or vertex): one row per
-- engine and model version, at most one of them active per engine: the model
-- that engine serves now and scores the fleet with. A redelivered deployment
-- updates its row.
CREATE TABLE model_deployments (
    engine            text NOT NULL CHECK (engine IN ('local', 'vertex')),
    model_version     text NOT NULL,
    artifact_name     text NOT NULL,                -- models/<version>/model.json in the bucket
    endpoint          text NOT NULL DEFAULT '',     -- local: predict URL; vertex: endpoint resource name
    deployed_model_id text NOT NULL DEFAULT '',     -- vertex: the deployed model's id on the endpoint
    model_resource    text NOT NULL DEFAULT '',     -- vertex: Model Registry resource name
    run_id            text NOT NULL,                -- the run that deployed it
    active            boolean NOT NULL DEFAULT true,
    deployed_at       timestamptz NOT NULL DEFAULT now(),
    undeployed_at     timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (engine, model_version)
);
CREATE UNIQUE INDEX model_deployments_one_active ON model_deployments (engine) WHERE active;

-- +goose Down
DROP TABLE model_deployments;
