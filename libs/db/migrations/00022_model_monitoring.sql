-- +goose Up
-- Model monitoring (the model_monitoring pipeline, issue 17) and alerting.
--
-- The trainer keeps a model's training profile (per-feature quantile bins and
-- the score distribution) beside its artifact, models/<version>/profile.json,
-- and may keep a new model as the shadow: scored beside the champion, promoted
-- by the deployer when its realized performance beats the champion's.
ALTER TABLE cmmsflow.models
    ADD COLUMN profile_name text    NOT NULL DEFAULT '',   -- models/<version>/profile.json; '' for none
    ADD COLUMN shadow       boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX models_one_shadow ON cmmsflow.models ((true)) WHERE shadow;

-- One row per scoring of the fleet by one model: the ETL's batch scoring and
-- each daily monitoring run, for the champion and any shadow. It records
-- the risk bands the scoring used (so history stays interpretable when the
-- bands change) and the drift it measured against the model's profile.
CREATE TABLE cmmsflow.model_scorings (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text        NOT NULL,
    pipeline      text        NOT NULL,
    model_version text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('champion', 'shadow')),
    snapshot_date date        NOT NULL,                 -- the day the features describe
    scored_assets integer     NOT NULL,
    risk_bands    jsonb       NOT NULL,                 -- the bands used: default and per vehicle type
    risk_levels   jsonb       NOT NULL,                 -- count per level
    psi           jsonb       NOT NULL DEFAULT '{}',    -- per feature and "score"; {} without a profile
    max_psi       double precision,
    drift         text        NOT NULL DEFAULT 'none' CHECK (drift IN ('none', 'ok', 'warn', 'alert')),
    scored_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, role)
);
CREATE INDEX model_scorings_model_idx ON cmmsflow.model_scorings (model_version, snapshot_date DESC);

-- Every score of a scoring, kept for realized performance until its label
-- window has passed and it has been evaluated (then the deployer prunes it).
-- scoring_id is a model_scorings id, with no foreign key: its check per row
-- made the COPY of 100,000 scores 0.84 s instead of 0.18 s, and nothing
-- deletes scorings (docs/benchmarks.md, model monitoring).
CREATE TABLE cmmsflow.model_scores (
    scoring_id          bigint           NOT NULL,
    asset_id            bigint           NOT NULL,
    failure_probability double precision NOT NULL CHECK (failure_probability BETWEEN 0 AND 1),
    risk_level          text             NOT NULL CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    PRIMARY KEY (scoring_id, asset_id)
);

-- Every scoring rewrites all of its model's predictions: with room left on
-- each page the updates stay on the page (HOT) and skip the index writes
-- (1.2 s → 0.4 s for 100,000 rows; docs/benchmarks.md).
ALTER TABLE cmmsflow.ml_predictions SET (fillfactor = 50);

-- Realized performance: the scores of one past scoring against the
-- corrective work orders of its label window, per monitoring run and model.
CREATE TABLE cmmsflow.model_performance (
    run_id             text        NOT NULL,            -- the monitoring run
    model_version      text        NOT NULL,
    role               text        NOT NULL CHECK (role IN ('champion', 'shadow')),
    scoring_id         bigint      NOT NULL,            -- the scoring evaluated
    snapshot_date      date        NOT NULL,            -- its snapshot; labels look at [date, date + window)
    label_window_days  integer     NOT NULL,
    labelled           integer     NOT NULL,
    positives          integer     NOT NULL,
    roc_auc            double precision,                -- NULL when only one class occurred
    critical_precision double precision,                -- NULL when no asset was critical
    computed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, model_version)
);

-- Retraining the monitor triggered: at most one per cooldown.
CREATE TABLE cmmsflow.model_retrains (
    retrain_run_id text PRIMARY KEY,                    -- the etl_ml_training run triggered
    monitor_run_id text        NOT NULL UNIQUE,         -- the monitoring run that triggered it
    model_version  text        NOT NULL,
    reason         text        NOT NULL,                -- drift | decay, with the figures
    triggered_at   timestamptz NOT NULL DEFAULT now()
);

-- Alert rules' observations: one per rule and period (an ISO week for report
-- metrics, a day for scoring and monitoring metrics).
CREATE TABLE cmmsflow.alert_observations (
    rule        text             NOT NULL,
    period      text             NOT NULL,
    metric      text             NOT NULL,
    value       double precision NOT NULL,
    breached    boolean          NOT NULL,
    run_id      text             NOT NULL,
    observed_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, period)
);

-- Alerts: opened when a rule's condition has held for its periods (or on
-- drift, or a failed run), resolved when it clears. At most one open alert
-- per rule; dedup_key is what PagerDuty groups trigger and resolve by.
CREATE TABLE cmmsflow.alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text             NOT NULL,          -- a rule's name, drift:<model>, run:<run id>
    kind            text             NOT NULL CHECK (kind IN ('rule', 'drift', 'run')),
    severity        text             NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    summary         text             NOT NULL,
    metric          text             NOT NULL DEFAULT '',
    value           double precision,
    threshold       double precision,
    opened_period   text             NOT NULL,
    resolved_period text,
    status          text             NOT NULL CHECK (status IN ('open', 'resolved')),
    dedup_key       text             NOT NULL UNIQUE,
    run_id          text             NOT NULL DEFAULT '', -- the run whose event opened it
    opened_at       timestamptz      NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX alerts_one_open ON cmmsflow.alerts (rule) WHERE status = 'open';
CREATE INDEX alerts_opened_idx ON cmmsflow.alerts (opened_at DESC);

-- Grants (docs/database-roles.md's matrix).
-- deployer: scores, drift, realized performance (labels from work orders),
-- promotes a shadow, triggers retraining.
GRANT SELECT ON cmms.work_orders TO cmmsflow_deployer;
GRANT UPDATE ON cmmsflow.models TO cmmsflow_deployer;
GRANT SELECT, INSERT, UPDATE, DELETE ON cmmsflow.model_scorings, cmmsflow.model_scores TO cmmsflow_deployer;
GRANT SELECT, INSERT, UPDATE ON cmmsflow.model_performance, cmmsflow.model_retrains TO cmmsflow_deployer;
-- notifier: evaluates the alert rules and keeps the alerts.
GRANT SELECT, INSERT, UPDATE ON cmmsflow.alert_observations, cmmsflow.alerts TO cmmsflow_notifier;
-- reporter: the weekly report's model-health section.
GRANT SELECT ON cmmsflow.model_scorings, cmmsflow.model_performance TO cmmsflow_reporter;
-- control: the admin page's dashboard, Models and Alerts views.
GRANT SELECT ON cmmsflow.model_scorings, cmmsflow.model_performance, cmmsflow.model_retrains,
    cmmsflow.alerts, cmmsflow.ml_predictions, cmms.assets TO cmmsflow_control;

-- +goose Down
REVOKE SELECT ON cmms.work_orders FROM cmmsflow_deployer;
REVOKE UPDATE ON cmmsflow.models FROM cmmsflow_deployer;
REVOKE SELECT ON cmmsflow.ml_predictions, cmms.assets FROM cmmsflow_control;
DROP TABLE cmmsflow.alerts, cmmsflow.alert_observations, cmmsflow.model_retrains, cmmsflow.model_performance,
    cmmsflow.model_scores, cmmsflow.model_scorings;
ALTER TABLE cmmsflow.ml_predictions RESET (fillfactor);
DROP INDEX cmmsflow.models_one_shadow;
ALTER TABLE cmmsflow.models DROP COLUMN shadow, DROP COLUMN profile_name;
