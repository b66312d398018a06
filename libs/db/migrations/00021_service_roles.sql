-- +goose Up
-- Least privilege (docs/database-roles.md, whose matrix a test compares with
-- these grants): one NOLOGIN group role per service, granted exactly the
-- tables the service reads and writes. The login applying the migrations
-- owns everything and is used by `cmmsflow migrate` only; each service
-- connects as a login of its own, made by the deployment and made a member
-- of its group role (GRANT cmmsflow_pmgen TO <pmgen's login>).
--
-- Roles belong to the server, not to a database: another database on the
-- same server may have created them already, or be creating them right now
-- (migrations of different databases are not serialised). So a role is
-- created only when missing, and losing that race (duplicate_object, or a
-- unique_violation on pg_authid's name index) is fine. Creating one needs
-- CREATEROLE; a login without it can still migrate once a role holder has
-- created the eight roles (CREATE ROLE cmmsflow_<service> NOLOGIN).
-- +goose StatementBegin
DO $$
DECLARE
    svc text;
    role text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['control', 'extractor', 'featurejob', 'trainer', 'deployer', 'pmgen', 'reporter', 'notifier'] LOOP
        role := 'cmmsflow_' || svc;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL; -- created meanwhile by another database's migration
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'cannot create the group role %: the login applying the migrations (%) lacks CREATEROLE', role, current_user
                        USING HINT = 'grant it CREATEROLE, or have a role holder run CREATE ROLE ' || role || ' NOLOGIN (and the other seven cmmsflow_<service> roles) first';
            END;
        END IF;
        IF (SELECT rolsuper FROM pg_roles WHERE rolname = role) THEN
            RAISE EXCEPTION 'role % is a superuser: it would bypass every grant; make it a plain NOLOGIN role', role;
        END IF;
        -- PUBLIC has CONNECT by default; granted too, so a server that
        -- revokes it from PUBLIC still lets the services in.
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role);
    END LOOP;
    -- Temporary tables: the deployer's scores, pmgen's batch.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO cmmsflow_deployer, cmmsflow_pmgen', current_database());
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA cmmsflow TO cmmsflow_control, cmmsflow_extractor, cmmsflow_featurejob, cmmsflow_trainer,
    cmmsflow_deployer, cmmsflow_pmgen, cmmsflow_reporter, cmmsflow_notifier;
-- Only the services that read a CMMS relation see the source schema.
GRANT USAGE ON SCHEMA cmms TO cmmsflow_control, cmmsflow_extractor, cmmsflow_deployer, cmmsflow_pmgen,
    cmmsflow_reporter, cmmsflow_notifier;

-- Every service: the step runtime (libs/eventing). The outbox (Emit, the
-- relay, its pending gauge, pruning), the dedupe records (Inbox, pruning),
-- the leases of the claim/work/complete phases, dead letters (written only)
-- and the applied mappings (source.Verify at start-up).
GRANT SELECT, INSERT, UPDATE, DELETE ON cmmsflow.outbox, cmmsflow.event_leases TO cmmsflow_control,
    cmmsflow_extractor, cmmsflow_featurejob, cmmsflow_trainer, cmmsflow_deployer, cmmsflow_pmgen,
    cmmsflow_reporter, cmmsflow_notifier;
GRANT SELECT, INSERT, DELETE ON cmmsflow.processed_events TO cmmsflow_control, cmmsflow_extractor,
    cmmsflow_featurejob, cmmsflow_trainer, cmmsflow_deployer, cmmsflow_pmgen, cmmsflow_reporter, cmmsflow_notifier;
GRANT INSERT ON cmmsflow.dead_letters TO cmmsflow_control, cmmsflow_extractor, cmmsflow_featurejob,
    cmmsflow_trainer, cmmsflow_deployer, cmmsflow_pmgen, cmmsflow_reporter, cmmsflow_notifier;
GRANT SELECT ON cmmsflow.source_contract TO cmmsflow_control, cmmsflow_extractor, cmmsflow_featurejob,
    cmmsflow_trainer, cmmsflow_deployer, cmmsflow_pmgen, cmmsflow_reporter, cmmsflow_notifier;
-- Every step service: RunGuard reads its run's state.
GRANT SELECT ON cmmsflow.runs TO cmmsflow_extractor, cmmsflow_featurejob, cmmsflow_trainer, cmmsflow_deployer,
    cmmsflow_pmgen, cmmsflow_reporter, cmmsflow_notifier;

-- control: the runs (projection, API, sweeper; FOR UPDATE needs UPDATE),
-- missed ticks, and what the admin page and the API show.
GRANT SELECT, INSERT, UPDATE ON cmmsflow.pipelines, cmmsflow.runs, cmmsflow.steps TO cmmsflow_control;
GRANT SELECT, INSERT ON cmmsflow.missed_ticks TO cmmsflow_control;
GRANT SELECT ON cmmsflow.dead_letters, cmmsflow.notifications, cmmsflow.reports, cmmsflow.models,
    cmmsflow.model_deployments, cmms.technicians TO cmmsflow_control;

-- extractor: the three CMMS relations it streams to Parquet.
GRANT SELECT ON cmms.assets, cmms.work_orders, cmms.maintenance_plans TO cmmsflow_extractor;

-- featurejob: nothing else (it reads and writes the bucket).

-- trainer: registers models and moves the champion.
GRANT SELECT, INSERT, UPDATE ON cmmsflow.models TO cmmsflow_trainer;

-- deployer: the champion's artifact, its deployments, the predictions.
GRANT SELECT ON cmms.assets, cmmsflow.models TO cmmsflow_deployer;
GRANT SELECT, INSERT, UPDATE ON cmmsflow.model_deployments, cmmsflow.ml_predictions TO cmmsflow_deployer;

-- pmgen: creates work orders and advances plans (FOR NO KEY UPDATE), or
-- with a backend keeps its ledger.
GRANT SELECT ON cmms.assets TO cmmsflow_pmgen;
GRANT SELECT, INSERT ON cmms.work_orders, cmmsflow.plan_occurrences TO cmmsflow_pmgen;
GRANT SELECT, UPDATE ON cmms.maintenance_plans TO cmmsflow_pmgen;
GRANT SELECT, INSERT, UPDATE ON cmmsflow.plan_ledger TO cmmsflow_pmgen;

-- reporter: the KPIs' sources, and its reports.
GRANT SELECT ON cmms.assets, cmms.work_orders, cmms.inventory_items, cmmsflow.ml_predictions TO cmmsflow_reporter;
GRANT SELECT, INSERT, UPDATE ON cmmsflow.reports TO cmmsflow_reporter;

-- notifier: what its messages tell, the runs its reconciler alerts, and its
-- notifications.
GRANT SELECT ON cmms.assets, cmms.work_orders, cmms.technicians, cmmsflow.steps, cmmsflow.plan_occurrences
    TO cmmsflow_notifier;
GRANT SELECT, INSERT, UPDATE ON cmmsflow.notifications TO cmmsflow_notifier;

-- +goose Down
-- The roles stay: other databases of the server may use them. Only this
-- database's grants go.
-- +goose StatementBegin
DO $$
DECLARE
    svc text;
    role text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['control', 'extractor', 'featurejob', 'trainer', 'deployer', 'pmgen', 'reporter', 'notifier'] LOOP
        role := 'cmmsflow_' || svc;
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA cmms, cmmsflow FROM %I', role);
        EXECUTE format('REVOKE ALL ON SCHEMA cmms, cmmsflow FROM %I', role);
        EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), role);
    END LOOP;
END
$$;
-- +goose StatementEnd
