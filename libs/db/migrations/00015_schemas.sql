-- +goose Up
-- Two schemas (libs/db package comment): cmmsflow's own copy of the CMMS
-- relations, the default source the pipelines read, in cmms; the tables only
-- cmmsflow writes in cmmsflow. Services connect with search_path
-- "<source>, cmmsflow", so they read the CMMS relations of one schema only;
-- a mapped source replaces cmms with views over an existing CMMS.
CREATE SCHEMA cmms;
CREATE SCHEMA cmmsflow;

ALTER TABLE public.technicians SET SCHEMA cmms;
ALTER TABLE public.assets SET SCHEMA cmms;
ALTER TABLE public.maintenance_plans SET SCHEMA cmms;
ALTER TABLE public.work_orders SET SCHEMA cmms;
ALTER TABLE public.inventory_items SET SCHEMA cmms;

ALTER TABLE public.ml_predictions SET SCHEMA cmmsflow;
ALTER TABLE public.pipelines SET SCHEMA cmmsflow;
ALTER TABLE public.runs SET SCHEMA cmmsflow;
ALTER TABLE public.steps SET SCHEMA cmmsflow;
ALTER TABLE public.processed_events SET SCHEMA cmmsflow;
ALTER TABLE public.outbox SET SCHEMA cmmsflow;
ALTER TABLE public.dead_letters SET SCHEMA cmmsflow;
ALTER TABLE public.notifications SET SCHEMA cmmsflow;
ALTER TABLE public.reports SET SCHEMA cmmsflow;
ALTER TABLE public.models SET SCHEMA cmmsflow;
ALTER TABLE public.model_deployments SET SCHEMA cmmsflow;
ALTER TABLE public.missed_ticks SET SCHEMA cmmsflow;

-- +goose Down
ALTER TABLE cmmsflow.missed_ticks SET SCHEMA public;
ALTER TABLE cmmsflow.model_deployments SET SCHEMA public;
ALTER TABLE cmmsflow.models SET SCHEMA public;
ALTER TABLE cmmsflow.reports SET SCHEMA public;
ALTER TABLE cmmsflow.notifications SET SCHEMA public;
ALTER TABLE cmmsflow.dead_letters SET SCHEMA public;
ALTER TABLE cmmsflow.outbox SET SCHEMA public;
ALTER TABLE cmmsflow.processed_events SET SCHEMA public;
ALTER TABLE cmmsflow.steps SET SCHEMA public;
ALTER TABLE cmmsflow.runs SET SCHEMA public;
ALTER TABLE cmmsflow.pipelines SET SCHEMA public;
ALTER TABLE cmmsflow.ml_predictions SET SCHEMA public;

ALTER TABLE cmms.inventory_items SET SCHEMA public;
ALTER TABLE cmms.work_orders SET SCHEMA public;
ALTER TABLE cmms.maintenance_plans SET SCHEMA public;
ALTER TABLE cmms.assets SET SCHEMA public;
ALTER TABLE cmms.technicians SET SCHEMA public;

DROP SCHEMA cmmsflow;
DROP SCHEMA cmms;
